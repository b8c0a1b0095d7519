// application::add_static: files from a directory, never outside it.
#include <loupe/runtime/application.hpp>

#include "http/text.hpp"

#include <algorithm>
#include <system_error>

namespace loupe {

namespace fs = std::filesystem;

namespace {

std::string_view content_type_for(const fs::path& p) {
  static const std::pair<std::string_view, std::string_view> types[] = {
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".json", "application/json"},
      {".txt", "text/plain; charset=utf-8"},
      {".md", "text/markdown; charset=utf-8"},
      {".csv", "text/csv; charset=utf-8"},
      {".xml", "application/xml"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".wasm", "application/wasm"},
      {".pdf", "application/pdf"},
      {".woff", "font/woff"},
      {".woff2", "font/woff2"},
      {".gz", "application/gzip"},
      {".zip", "application/zip"},
  };
  const std::string ext = detail::to_lower(p.extension().string());
  for (const auto& [e, t] : types)
    if (e == ext) return t;
  return "application/octet-stream";
}

// A relative file name is acceptable when no segment is empty, "." or "..".
bool safe_relative(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.find('\\') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos)
    return false;
  std::size_t pos = 0;
  for (;;) {
    const auto slash = name.find('/', pos);
    const auto seg = name.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    if (seg.empty() || seg == "." || seg == "..") return false;
    if (slash == std::string_view::npos) return true;
    pos = slash + 1;
  }
}

bool within(const fs::path& root, const fs::path& p) {
  auto r = root.begin(), q = p.begin();
  for (; r != root.end(); ++r, ++q)
    if (q == p.end() || *r != *q) return false;
  return true;
}

}  // namespace

route& application::add_static(std::string_view prefix, const fs::path& directory, static_options opts) {
  std::error_code ec;
  if (!fs::is_directory(directory, ec))
    throw std::invalid_argument("add_static: '" + directory.string() + "' is not a directory");
  if (prefix.empty() || prefix.front() != '/' || prefix.find_first_of("{}") != std::string_view::npos)
    throw std::invalid_argument("add_static: prefix '" + std::string(prefix) + "' must start with '/'");
  std::string base(prefix);
  while (!base.empty() && base.back() == '/') base.pop_back();
  const fs::path root = fs::canonical(directory);
  const bool follow = opts.follow_symlinks;
  handler h = [root, follow](request& req) -> awaitable<response> {
    const std::string_view name = req.match_info().at("filename");
    if (!safe_relative(name)) throw http_not_found();
    const fs::path candidate = root / fs::path(std::string(name));
    std::error_code ec;
    const fs::path real = follow ? candidate.lexically_normal() : fs::canonical(candidate, ec);
    if (ec || !within(root, real)) throw http_not_found();
    const auto st = fs::status(real, ec);
    if (ec || !fs::exists(st)) throw http_not_found();
    if (!fs::is_regular_file(st)) throw http_forbidden();
    const auto size = fs::file_size(real, ec);
    if (ec) throw http_not_found();
    co_return response::file(real, content_type_for(real), size);
  };
  return add_route(boost::beast::http::verb::get, base + "/{filename:.+}", std::move(h), opts.name);
}

}  // namespace loupe
