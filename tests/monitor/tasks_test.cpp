// ps, where and pstree over a live loop: waits and their co_await sites,
// parents, the tree, the summary by spawn site, and ps's page.
#include <loupe/monitor/console.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/testkit/test.hpp>

#include "console_client.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

using loupe::test_support::console_client;
using loupe::test_support::nap;
using loupe::test_support::parent_of_nappers;
using namespace std::chrono_literals;

LOUPE_TEST_F(Console, PsWherePstreeAndSites) {
  console.start();
  const auto parent = loupe::spawn(loop, "napper-parent", parent_of_nappers(loop));
  for (int i = 0; i < 3; ++i) loupe::spawn(loop, "napper", nap());
  // All five (parent, child, three nappers) suspended on what they wait for.
  co_await loupe::testkit::wait_until([&] {
    std::size_t n = 0;
    for (const auto& t : loop.tasks())
      n += t.name.starts_with("napper") && t.state == loupe::task_state::suspended && t.wait.operation;
    return n == 5;
  });
  console_client c(loop.get_executor());
  co_await c.connect(console.port());

  const auto ps = co_await c.command("ps napper");
  EXPECT_NE(ps.find("5 task(s)"), std::string::npos) << ps;
  EXPECT_NE(ps.find("async_wait on deadline_timer"), std::string::npos) << ps;
  EXPECT_NE(ps.find("console_client.hpp:"), std::string::npos) << ps;  // the co_await's location (in nap())
  EXPECT_NE((co_await c.command("ps napper-child --state running")).find("0 task(s)"), std::string::npos);
  EXPECT_NE((co_await c.command("ps napper-child --state suspended")).find("1 task(s)"), std::string::npos);

  const auto json = boost::json::parse(co_await c.command("ps napper-child --json")).as_array();
  CO_ASSERT_EQ(json.size(), 1u);
  const auto child = json[0].as_object();
  EXPECT_EQ(child.at("parent_id").to_number<std::uint64_t>(), parent);
  EXPECT_EQ(child.at("wait").at("operation"), "async_wait");

  const auto where = co_await c.command("where " + std::to_string(child.at("id").to_number<std::uint64_t>()));
  EXPECT_NE(where.find("waiting for:  async_wait on deadline_timer"), std::string::npos) << where;
  EXPECT_NE(where.find("console_client.hpp:"), std::string::npos) << where;
  EXPECT_NE(where.find("#" + std::to_string(parent) + " 'napper-parent' suspended"), std::string::npos) << where;
  // The parent awaits its child: suspended on it, at the line that spawned it.
  const auto parent_where = co_await c.command("where " + std::to_string(parent));
  EXPECT_NE(parent_where.find("waiting for:  await on task"), std::string::npos) << parent_where;
  EXPECT_NE(parent_where.find("console_client.hpp:"), std::string::npos) << parent_where;

  const auto tree = co_await c.command("pstree");
  EXPECT_NE(tree.find("#" + std::to_string(parent) + " napper-parent"), std::string::npos) << tree;
  EXPECT_NE(tree.find("└─ #"), std::string::npos) << tree;

  const auto sites = co_await c.command("ps napper --sites");
  EXPECT_NE(sites.find("     3  tasks_test.cpp:"), std::string::npos) << sites;  // the three alike, one row

  for (const auto& t : loop.tasks())
    if (t.name.starts_with("napper")) loop.cancel(t.id);
}

// `ps` prints one page unless asked for more.
LOUPE_TEST_F(Console, PsPrintsOnePageUnlessAskedForMore) {
  console.start();
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 150; ++i) ids.push_back(loupe::spawn(loop, "paged", nap()));
  co_await loupe::sleep_for(10ms);
  console_client c(loop.get_executor());
  co_await c.connect(console.port());
  EXPECT_NE((co_await c.command("ps paged")).find("100 of 150 task(s), the longest-suspended first"), std::string::npos);
  EXPECT_NE((co_await c.command("ps paged --limit 7")).find("7 of 150 task(s)"), std::string::npos);
  EXPECT_NE((co_await c.command("ps paged --all")).find("150 task(s)"), std::string::npos);
  EXPECT_EQ(boost::json::parse(co_await c.command("ps paged --json --limit 3")).as_array().size(), 3u);
  EXPECT_NE((co_await c.command("ps --limit x")).find("--limit takes a positive number"), std::string::npos);
  for (auto id : ids) loop.cancel(id);
}
