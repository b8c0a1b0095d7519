// The access log ("loupe.access"): one record per answered request, refused
// ones included, joined to the request's other records by its request id.
#include "support/log_fixture.hpp"

namespace {
awaitable<void> child_logs() {
  loupe::log::app().info("from a child task");
  co_return;
}
}  // namespace

// A handler's record, its child task's record and the access record carry the
// request's id; the handler's and the access record the request task's id.
TEST_F(Log, RequestRecordsShareTheRequestIdWithTheAccessLog) {
  loupe::loop lp("log-request");
  loupe::application app;
  app.get("/work", [&lp](loupe::request&) -> awaitable<loupe::response> {
    loupe::log::info(loupe::log::app(), "working", {{"step", 1}});
    co_await loupe::spawn(lp, "helper", child_logs(), boost::asio::use_awaitable);
    co_return loupe::response::text("done");
  });
  loupe::server srv(lp, app);
  const auto ep = srv.listen("127.0.0.1", 0);
  std::vector<std::string> ids;
  loupe::testkit::run(lp, [&]() -> awaitable<void> {
    loupe::client_session http(lp);
    const std::string url = "http://127.0.0.1:" + std::to_string(ep.port()) + "/work";
    loupe::request_options sane;
    sane.headers = {{"X-Request-ID", "client-id-1"}};
    ids.emplace_back((co_await http.get(url, sane)).header("X-Request-ID").value_or(""));
    loupe::request_options spaced;
    spaced.headers = {{"X-Request-ID", "has space"}};
    ids.emplace_back((co_await http.get(url, spaced)).header("X-Request-ID").value_or(""));
    loupe::request_options long_id;
    long_id.headers = {{"X-Request-ID", std::string(129, 'a')}};
    ids.emplace_back((co_await http.get(url, long_id)).header("X-Request-ID").value_or(""));
    ids.emplace_back((co_await http.get(url)).header("X-Request-ID").value_or(""));
    ids.emplace_back((co_await http.get(url)).header("X-Request-ID").value_or(""));
    // The access record follows the write, which the client may see first.
    co_await loupe::testkit::wait_until([&] { return srv.requests_served() == 5; });
  });
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(ids[0], "client-id-1");
  for (std::size_t i = 1; i < ids.size(); ++i) {
    EXPECT_EQ(ids[i].size(), 32u) << ids[i];
    EXPECT_EQ(ids[i].find_first_not_of("0123456789abcdef"), std::string::npos) << ids[i];
  }
  EXPECT_NE(ids[3], ids[4]);

  const auto recs = records();
  for (const auto& id : ids) {
    const boost::json::object *handler = nullptr, *child = nullptr, *access = nullptr;
    for (const auto& r : recs) {
      if (!r.contains("request_id") || r.at("request_id") != id.c_str()) continue;
      if (r.at("msg") == "working") handler = &r;
      if (r.at("msg") == "from a child task") child = &r;
      if (r.at("logger") == "loupe.access") access = &r;
    }
    ASSERT_TRUE(handler && child && access) << "records for request " << id;
    EXPECT_EQ(handler->at("task"), "http.request");
    EXPECT_EQ(handler->at("step").as_int64(), 1);
    EXPECT_EQ(access->at("task_id"), handler->at("task_id"));
    EXPECT_EQ(child->at("task"), "helper");
    EXPECT_NE(child->at("task_id"), handler->at("task_id"));
    EXPECT_EQ(access->at("method"), "GET");
    EXPECT_EQ(access->at("path"), "/work");
    EXPECT_EQ(access->at("route"), "/work");
    EXPECT_EQ(access->at("status").as_int64(), 200);
    EXPECT_EQ(access->at("response_bytes").as_int64(), 4);
    EXPECT_EQ(access->at("remote"), "127.0.0.1");
    EXPECT_TRUE(access->at("duration_ms").is_double());
    EXPECT_NE(std::string(access->at("user_agent").as_string()).find("loupe"), std::string::npos);
  }
}

// A request refused before the application (bad framing, a malformed field)
// still gets a request id, echoed in the error response and in its access
// record, with what could safely be read of its request line.
TEST_F(Log, RefusedRequestsGetARequestIdAndAnAccessRecord) {
  loupe::loop lp("log-refused");
  loupe::application app;
  app.get("/", [](loupe::request&) -> awaitable<loupe::response> { co_return loupe::response::text("hi"); });
  loupe::server srv(lp, app, {.max_header_bytes = 4096});
  const auto ep = srv.listen("127.0.0.1", 0);
  std::string bad_id, field_id;
  loupe::testkit::run(lp, [&]() -> awaitable<void> {
    loupe::testkit::raw_client bad(lp.get_executor());
    co_await bad.connect(ep);
    co_await bad.send("GET /framing HTTP/1.1\r\nHost: a\r\nUser-Agent: refusal-test/1\r\n"
                      "X-Request-ID: refused-1\r\nTransfer-Encoding: gzip\r\n\r\n");
    auto res = co_await bad.read_response();
    EXPECT_EQ(res.result_int(), 400);
    bad_id = std::string(res["X-Request-ID"]);
    loupe::testkit::raw_client field(lp.get_executor());
    co_await field.connect(ep);
    co_await field.send("PUT /fields HTTP/1.1\r\nHost: a\r\nBad Name: p\r\n\r\n");
    res = co_await field.read_response();
    EXPECT_EQ(res.result_int(), 400);
    field_id = std::string(res["X-Request-ID"]);
    // The access records follow the writes, which the client may see first.
    co_await loupe::testkit::wait_until([&] {
      loupe::log::flush();
      std::size_t n = 0;
      for (const auto& line : sink->lines()) n += line.find("\"loupe.access\"") != std::string::npos;
      return n == 2;
    });
  });
  EXPECT_EQ(bad_id, "refused-1");
  EXPECT_EQ(field_id.size(), 32u) << field_id;
  const boost::json::object *bad = nullptr, *field = nullptr;
  const auto recs = records();
  for (const auto& r : recs) {
    if (r.at("logger") != "loupe.access") continue;
    if (r.at("request_id") == "refused-1") bad = &r;
    else field = &r;
  }
  ASSERT_TRUE(bad && field);
  EXPECT_EQ(bad->at("request_id"), "refused-1");
  EXPECT_EQ(bad->at("method"), "GET");
  EXPECT_EQ(bad->at("path"), "/framing");
  EXPECT_EQ(bad->at("route"), "_unmatched");
  EXPECT_EQ(bad->at("user_agent"), "refusal-test/1");
  EXPECT_EQ(field->at("request_id"), field_id.c_str());
  EXPECT_EQ(field->at("method"), "PUT");  // the request line was parsed before the bad field
  EXPECT_EQ(field->at("path"), "/fields");
}

TEST_F(Log, AccessLogCanBeTurnedOff) {
  loupe::loop lp("log-quiet");
  loupe::application app;
  app.get("/", [](loupe::request&) -> awaitable<loupe::response> { co_return loupe::response::text("hi"); });
  loupe::server srv(lp, app, {.access_log = false});
  const auto ep = srv.listen("127.0.0.1", 0);
  loupe::testkit::run(lp, [&]() -> awaitable<void> {
    loupe::client_session http(lp);
    auto res = co_await http.get("http://127.0.0.1:" + std::to_string(ep.port()) + "/");
    EXPECT_EQ(res.status_code(), 200u);
    co_await loupe::testkit::wait_until([&] { return srv.requests_served() == 1; });
  });
  for (const auto& r : records()) EXPECT_NE(r.at("logger"), "loupe.access") << r;
}
