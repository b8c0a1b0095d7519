// loupe/runtime/response.hpp — what a handler returns.
//
//   co_return loupe::response::text("Hello, world!");
//   co_return loupe::response::json({{"data", "Hello, world!"}});
//   co_return loupe::response::bytes(png, "image/png");
//   co_return loupe::response::redirect("/login");                    // 302
//   co_return loupe::http_not_found("no user 42");                   // an error as a value
//   auto res = loupe::response::text("ok");
//   res.set_header("Cache-Control", "no-store").set_cookie("session", token, {.http_only = true});
//
// A response is a value: build it, move it out. Not thread-safe.
#pragma once

#include <loupe/runtime/errors.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace loupe {

namespace detail {
struct access;
}

struct websocket_upgrade;

/// Attributes of a Set-Cookie header.
struct cookie_options {
  std::optional<std::chrono::seconds> max_age;
  std::string path = "/";
  std::string domain;
  bool secure = false;
  bool http_only = false;
  std::string same_site;  ///< "Strict", "Lax", "None" or empty
};

class response {
 public:
  using message_type = boost::beast::http::response<boost::beast::http::string_body>;
  using status_type = boost::beast::http::status;

  /// 200 with an empty body.
  response();
  explicit response(status_type status);
  /// The response an HTTP error stands for (so handlers may `co_return` one).
  response(const http_error& error);  // NOLINT(google-explicit-constructor)

  static response text(std::string body, status_type status = status_type::ok,
                       std::string_view content_type = "text/plain; charset=utf-8");
  static response json(const boost::json::value& body, status_type status = status_type::ok);
  static response bytes(std::string body, std::string_view content_type = "application/octet-stream",
                        status_type status = status_type::ok);
  static response redirect(std::string_view location, status_type status = status_type::found);
  /// A file streamed from disk; the caller has checked that it may be served.
  static response file(const std::filesystem::path& path, std::string_view content_type, std::uint64_t size);

  status_type status() const noexcept { return msg_.result(); }
  response& set_status(status_type s) noexcept;
  std::optional<std::string_view> header(std::string_view name) const;
  response& set_header(std::string_view name, std::string_view value);
  /// Adds a header line even if one with this name exists.
  response& add_header(std::string_view name, std::string_view value);
  response& erase_header(std::string_view name);
  response& set_content_type(std::string_view content_type);
  response& set_cookie(std::string_view name, std::string_view value, const cookie_options& opts = {});
  /// Tells the client to forget a cookie (expired Set-Cookie).
  response& del_cookie(std::string_view name, std::string_view path = "/");

  const std::string& body() const noexcept { return msg_.body(); }
  response& set_body(std::string body);

  /// The file to stream instead of `body()`, if this is a file response.
  const std::optional<std::filesystem::path>& file_path() const noexcept { return file_; }
  std::uint64_t file_size() const noexcept { return file_size_; }

  message_type& native() noexcept { return msg_; }
  const message_type& native() const noexcept { return msg_; }

  /// Set by a WebSocket route: the server accepts the upgrade and runs it.
  const std::shared_ptr<const websocket_upgrade>& upgrade() const noexcept { return upgrade_; }

 private:
  friend struct detail::access;
  message_type msg_;
  std::shared_ptr<const websocket_upgrade> upgrade_;
  std::optional<std::filesystem::path> file_;
  std::uint64_t file_size_ = 0;
};

}  // namespace loupe
