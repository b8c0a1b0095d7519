// Static files: served from their directory and never from outside it.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/testkit/run.hpp>

#include "support/handle.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace http = boost::beast::http;
using loupe::application;
using loupe::awaitable;
using loupe::request;
using loupe::response;
using loupe::test_support::call;
using loupe::test_support::make_request;

TEST(Application, StaticFilesNeverEscapeTheDirectory) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("loupe-static-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "public" / "css");
  std::ofstream(root / "public" / "index.html") << "<h1>hi</h1>";
  std::ofstream(root / "public" / "css" / "site.css") << "body{}";
  std::ofstream(root / "secret.txt") << "top secret";
  fs::create_symlink(root / "secret.txt", root / "public" / "link.txt");

  application app;
  app.add_static("/static", root / "public", {.name = "static"});
  auto file = call(app, http::verb::get, "/static/css/site.css");
  EXPECT_EQ(file.status(), http::status::ok);
  ASSERT_TRUE(file.file_path().has_value());
  EXPECT_EQ(file.file_size(), 6u);
  EXPECT_EQ(file.header("Content-Type").value_or(""), "text/css; charset=utf-8");
  for (const char* bad : {"/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/css/../../secret.txt",
                          "/static/..%2fsecret.txt", "/static//etc/passwd", "/static/link.txt", "/static/nope.txt"})
    EXPECT_EQ(call(app, http::verb::get, bad).status(), http::status::not_found) << bad;
  EXPECT_EQ(call(app, http::verb::get, "/static/css").status(), http::status::forbidden);
  EXPECT_EQ(app.url_for("static", {{"filename", "css/site.css"}}), "/static/css/site.css");
  EXPECT_THROW(app.add_static("/x", root / "missing"), std::invalid_argument);
  fs::remove_all(root);
}
