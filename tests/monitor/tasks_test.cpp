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

// A task a handler spawns and leaves running outlives its request: while the
// request runs, ps shows the request as the task's own; after it was
// answered, "request ended" (it went on showing the request as if it were
// still serving it). The records keep the request id; ps-terminated too.
LOUPE_TEST_F(Console, ABackgroundTaskSaysWhenItsRequestHasEnded) {
  console.start();
  loupe::application app;
  loupe::steady_timer gate(loop.get_executor(), loupe::steady_timer::time_point::max());
  loupe::steady_timer work(loop.get_executor(), loupe::steady_timer::time_point::max());
  auto background = [&]() -> loupe::awaitable<void> {
    (void)co_await work.async_wait(boost::asio::as_tuple(loupe::here()));
  };
  app.post("/jobs", [&](loupe::request&) -> loupe::awaitable<loupe::response> {
    loupe::spawn(loop, "job.export", background());
    (void)co_await gate.async_wait(boost::asio::as_tuple(loupe::here()));
    co_return loupe::response::text("accepted");
  });
  auto& srv = server(app);
  loupe::testkit::raw_client http(loop.get_executor());
  co_await http.connect(srv.endpoint());
  co_await http.send("POST /jobs?kind=csv HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  co_await loupe::testkit::wait_until([&] {
    for (const auto& t : loop.tasks())
      if (t.name == "job.export" && t.wait.operation) return true;
    return false;
  });
  console_client c(loop.get_executor());
  co_await c.connect(console.port());
  const auto during = co_await c.command("ps job.export");
  EXPECT_NE(during.find("POST /jobs?kind=csv (route /jobs)"), std::string::npos) << during;
  EXPECT_EQ(during.find("request ended"), std::string::npos) << during;

  gate.cancel();
  EXPECT_EQ((co_await http.read_response()).result_int(), 200);
  co_await loupe::testkit::wait_until([&] {
    for (const auto& t : loop.tasks())
      if (t.name == "http.request") return false;
    return true;
  });
  const auto after = co_await c.command("ps job.export");
  EXPECT_NE(after.find("POST /jobs?kind=csv (route /jobs), request ended"), std::string::npos) << after;
  std::uint64_t id = 0;
  for (const auto& t : loop.tasks())
    if (t.name == "job.export") id = t.id;
  CO_ASSERT_NE(id, 0u);
  const auto where = co_await c.command("where " + std::to_string(id));
  EXPECT_NE(where.find("request ended"), std::string::npos) << where;
  const auto json = boost::json::parse(co_await c.command("ps --json job.export"));
  const auto& task = json.as_array().at(0);
  EXPECT_EQ(task.at("request").at("ended"), true) << json;
  EXPECT_NE(task.at("request").at("request_id").as_string(), "") << json;

  work.cancel();
  co_await loupe::testkit::wait_until([&] { return loop.find_task(id) == std::nullopt; });
  const auto ended = co_await c.command("ps-terminated job.export");
  EXPECT_NE(ended.find("request ended"), std::string::npos) << ended;
  http.close();
}
