// Route templates, matching and URL building.
#include <loupe/runtime/router.hpp>

#include "http/url_codec.hpp"

#include <boost/regex.hpp>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

namespace loupe {

namespace http = boost::beast::http;

namespace {

struct part {
  bool is_param = false;
  std::string text;     // literal text, or the parameter's name
  std::string pattern;  // the parameter's regex
  bool custom = false;  // {name:regex} rather than {name}
  boost::regex anchored;
};

constexpr std::string_view default_param_pattern = "[^{}/]+";

bool valid_identifier(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::string regex_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::string_view(".^$|()[]{}*+?\\").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

part literal_part(std::string text) {
  part p;
  p.text = std::move(text);
  return p;
}

std::vector<part> parse_template(std::string_view tpl) {
  if (tpl.empty() || tpl.front() != '/')
    throw std::invalid_argument("route '" + std::string(tpl) + "': a path must start with '/'");
  std::vector<part> parts;
  std::string literal;
  for (std::size_t i = 0; i < tpl.size();) {
    const char c = tpl[i];
    if (c == '}') throw std::invalid_argument("route '" + std::string(tpl) + "': unbalanced '}'");
    if (c != '{') {
      literal += c;
      ++i;
      continue;
    }
    // {name} or {name:regex}; braces inside the regex nest.
    std::size_t depth = 1, j = i + 1;
    for (; j < tpl.size() && depth; ++j) {
      if (tpl[j] == '\\') {
        ++j;
        continue;
      }
      if (tpl[j] == '{') ++depth;
      else if (tpl[j] == '}') --depth;
    }
    if (depth) throw std::invalid_argument("route '" + std::string(tpl) + "': unbalanced '{'");
    std::string_view inner = tpl.substr(i + 1, j - i - 2);
    part p;
    p.is_param = true;
    const auto colon = inner.find(':');
    p.text = std::string(inner.substr(0, colon));
    p.custom = colon != std::string_view::npos;
    p.pattern = p.custom ? std::string(inner.substr(colon + 1)) : std::string(default_param_pattern);
    if (!valid_identifier(p.text))
      throw std::invalid_argument("route '" + std::string(tpl) + "': bad parameter name '" + p.text + "'");
    if (p.pattern.empty())
      throw std::invalid_argument("route '" + std::string(tpl) + "': empty pattern for '" + p.text + "'");
    for (const auto& q : parts)
      if (q.is_param && q.text == p.text)
        throw std::invalid_argument("route '" + std::string(tpl) + "': parameter '" + p.text + "' repeats");
    try {
      p.anchored = boost::regex("(?:" + p.pattern + ")", boost::regex::perl);
    } catch (const boost::regex_error& e) {
      throw std::invalid_argument("route '" + std::string(tpl) + "': bad regex for '" + p.text + "': " + e.what());
    }
    if (!literal.empty()) parts.push_back(literal_part(std::move(literal)));
    literal.clear();
    parts.push_back(std::move(p));
    i = j;
  }
  if (!literal.empty()) parts.push_back(literal_part(std::move(literal)));
  return parts;
}

std::string method_label(const route& r) { return r.method_name; }

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct router::impl {
  struct compiled {
    route* r = nullptr;
    std::vector<part> parts;
    std::string literal_prefix;  // text before the first parameter
    boost::regex whole;          // for templates with parameters
    bool is_static = true;
  };
  std::vector<std::unique_ptr<route>> routes;
  std::vector<std::string> raw_templates;  // as added, before any prefix
  std::vector<compiled> table;             // same order as routes
  std::unordered_map<std::string, std::vector<std::size_t>, string_hash, std::equal_to<>> static_index;
  std::vector<std::size_t> dynamic_index;
  std::unordered_map<std::string, std::size_t, string_hash, std::equal_to<>> names;
  std::string prefix;

  compiled compile(route* r) const {
    compiled c;
    c.r = r;
    c.parts = parse_template(r->path_template);
    std::string re;
    for (const auto& p : c.parts) {
      if (p.is_param) {
        c.is_static = false;
        re += "(?<" + p.text + ">" + p.pattern + ")";
      } else {
        if (c.is_static) c.literal_prefix += p.text;
        re += regex_escape(p.text);
      }
    }
    if (!c.is_static) c.whole = boost::regex(re, boost::regex::perl);
    return c;
  }

  void rebuild() {
    table.clear();
    static_index.clear();
    dynamic_index.clear();
    for (std::size_t i = 0; i < routes.size(); ++i) index(i, compile(routes[i].get()));
  }

  void index(std::size_t i, compiled c) {
    if (c.is_static) static_index[c.literal_prefix].push_back(i);
    else dynamic_index.push_back(i);
    table.push_back(std::move(c));
  }
};

router::router() : impl_(std::make_unique<impl>()) {}
router::~router() = default;
router::router(router&&) noexcept = default;
router& router::operator=(router&&) noexcept = default;

route& router::add(http::verb method, std::string_view path_template, handler h, std::string name) {
  if (method == http::verb::unknown) throw std::invalid_argument("route: unknown method");
  const auto ms = http::to_string(method);
  auto& r = add(std::string_view(ms.data(), ms.size()), path_template, std::move(h), std::move(name));
  return r;
}

route& router::add(std::string_view method_name, std::string_view path_template, handler h, std::string name) {
  if (method_name.empty() ||
      !std::all_of(method_name.begin(), method_name.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
    throw std::invalid_argument("route '" + std::string(path_template) + "': bad method '" + std::string(method_name) +
                                "'");
  if (!h) throw std::invalid_argument("route '" + std::string(path_template) + "': empty handler");
  if (!name.empty() && impl_->names.count(name)) throw std::invalid_argument("route name '" + name + "' is already used");
  auto r = std::make_unique<route>();
  r->method = http::string_to_verb(method_name);
  r->method_name = std::string(method_name);
  r->path_template = impl_->prefix + std::string(path_template);
  r->name = std::move(name);
  r->handler = std::move(h);
  auto c = impl_->compile(r.get());  // throws before anything is stored
  const std::size_t i = impl_->routes.size();
  if (!r->name.empty()) impl_->names.emplace(r->name, i);
  impl_->raw_templates.emplace_back(path_template);
  impl_->routes.push_back(std::move(r));
  impl_->index(i, std::move(c));
  return *impl_->routes.back();
}

const std::vector<std::unique_ptr<route>>& router::routes() const noexcept { return impl_->routes; }

void router::set_prefix(std::string_view prefix) {
  impl_->prefix = std::string(prefix);
  for (std::size_t i = 0; i < impl_->routes.size(); ++i)
    impl_->routes[i]->path_template = impl_->prefix + impl_->raw_templates[i];
  impl_->rebuild();
}

const std::string& router::prefix() const noexcept { return impl_->prefix; }

router::match_result router::match(http::verb method, std::string_view method_name, std::string_view path) const {
  match_result res;
  std::vector<const route*> path_matches;
  auto method_ok = [&](const route& r) {
    if (r.method != http::verb::unknown && method != http::verb::unknown)
      return r.method == method || (method == http::verb::head && r.method == http::verb::get);
    return r.method_name == method_name;
  };
  // Static paths first.
  if (auto it = impl_->static_index.find(path); it != impl_->static_index.end()) {
    for (std::size_t i : it->second) {
      const route& r = *impl_->routes[i];
      if (method_ok(r)) {
        res.outcome = match_result::kind::found;
        res.route = &r;
        // A HEAD request prefers an explicit HEAD route over a GET one.
        if (!(method == http::verb::head && r.method == http::verb::get)) return res;
      }
      path_matches.push_back(&r);
    }
    if (res.route) return res;
  }
  boost::match_results<std::string_view::const_iterator> m;
  for (std::size_t i : impl_->dynamic_index) {
    const auto& c = impl_->table[i];
    if (path.size() < c.literal_prefix.size() || path.compare(0, c.literal_prefix.size(), c.literal_prefix) != 0)
      continue;
    if (!boost::regex_match(path.begin(), path.end(), m, c.whole)) continue;
    if (!method_ok(*c.r)) {
      path_matches.push_back(c.r);
      continue;
    }
    res.outcome = match_result::kind::found;
    res.route = c.r;
    for (const auto& p : c.parts)
      if (p.is_param) res.params.add(p.text, m[p.text].str());
    return res;
  }
  if (!path_matches.empty()) {
    auto& methods = res.allowed;
    for (const route* r : path_matches) {
      methods.push_back(method_label(*r));
      if (r->method == http::verb::get) methods.emplace_back("HEAD");
    }
    std::sort(methods.begin(), methods.end());
    methods.erase(std::unique(methods.begin(), methods.end()), methods.end());
    res.outcome = match_result::kind::method_not_allowed;
    res.route = path_matches.front();
  }
  return res;
}

std::string router::match_result::allow_header() const {
  std::string out;
  for (const auto& m : allowed) {
    if (!out.empty()) out += ", ";
    out += m;
  }
  return out;
}

std::string router::url_for(std::string_view name, const url_params& params, const url_params& query) const {
  auto it = impl_->names.find(name);
  if (it == impl_->names.end()) throw std::invalid_argument("url_for: no route named '" + std::string(name) + "'");
  const auto& c = impl_->table[it->second];
  std::string url;
  for (const auto& p : c.parts) {
    if (!p.is_param) {
      url += p.text;
      continue;
    }
    auto v = std::find_if(params.begin(), params.end(), [&](const auto& kv) { return kv.first == p.text; });
    if (v == params.end())
      throw std::invalid_argument("url_for('" + std::string(name) + "'): missing parameter '" + p.text + "'");
    if (!boost::regex_match(v->second, p.anchored))
      throw std::invalid_argument("url_for('" + std::string(name) + "'): '" + v->second + "' does not match {" + p.text +
                                  ":" + p.pattern + "}");
    detail::url_codec::append_path(url, v->second, p.custom);
  }
  for (const auto& p : params) {
    const bool known = std::any_of(c.parts.begin(), c.parts.end(),
                                   [&](const part& q) { return q.is_param && q.text == p.first; });
    if (!known)
      throw std::invalid_argument("url_for('" + std::string(name) + "'): route has no parameter '" + p.first + "'");
  }
  char sep = '?';
  for (const auto& [k, v] : query) {
    url += sep;
    sep = '&';
    detail::url_codec::append_query(url, k);
    url += '=';
    detail::url_codec::append_query(url, v);
  }
  return url;
}

}  // namespace loupe
