// testkit: captured log records.
#include <loupe/testkit/logs.hpp>

#include <loupe/runtime/log.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/sinks/base_sink.h>

namespace loupe::testkit {

class log_capture::line_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    lines_.emplace_back(buf.data(), buf.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

std::optional<std::string> log_record::field(std::string_view key) const {
  const auto* v = json.if_contains(key);
  if (!v) return std::nullopt;
  if (v->is_string()) return std::string(v->get_string());
  return boost::json::serialize(*v);
}

bool log_query::matches(const log_record& r) const {
  if (level && r.level != *level) return false;
  if (!logger.empty() && r.logger != logger) return false;
  if (!message.empty() && r.msg.find(message) == std::string::npos) return false;
  for (const auto& [k, v] : fields)
    if (r.field(k) != v) return false;
  return true;
}

std::string log_query::describe() const {
  std::string out = "{";
  auto add = [&](std::string_view k, std::string_view v) {
    if (out.size() > 1) out += ", ";
    out.append(k).append("=").append(v);
  };
  if (level) {
    const auto name = spdlog::level::to_string_view(*level);
    add("level", std::string_view(name.data(), name.size()));
  }
  if (!logger.empty()) add("logger", logger);
  if (!message.empty()) add("message~", message);
  for (const auto& [k, v] : fields) add(k, v);
  return out + "}";
}

log_capture::log_capture() : sink_(std::make_shared<line_sink>()) {}

spdlog::sink_ptr log_capture::sink() const { return sink_; }

std::vector<log_record> log_capture::records() const {
  log::flush();
  std::vector<log_record> out;
  for (auto& line : sink_->lines()) {
    log_record r;
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    if (!ec && v.is_object()) {
      r.json = std::move(v.as_object());
      if (const auto* l = r.json.if_contains("level"); l && l->is_string())
        r.level = log::parse_level(std::string_view(l->get_string()));
      if (const auto* l = r.json.if_contains("logger"); l && l->is_string()) r.logger = l->get_string();
      if (const auto* m = r.json.if_contains("msg"); m && m->is_string()) r.msg = m->get_string();
    } else {
      r.msg = line;  // text format: the whole line
    }
    if (!line.empty() && line.back() == '\n') line.pop_back();
    r.line = std::move(line);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<log_record> log_capture::find(const log_query& q) const {
  auto all = records();
  std::erase_if(all, [&](const log_record& r) { return !q.matches(r); });
  return all;
}

}  // namespace loupe::testkit
