// string_pairs: the ordered name/value list behind query(), cookies, form
// fields and match_info().
#include <loupe/runtime/request.hpp>

#include <stdexcept>

namespace loupe {

std::optional<std::string_view> string_pairs::get(std::string_view name) const noexcept {
  for (const auto& [k, v] : items_)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

std::string_view string_pairs::at(std::string_view name) const {
  if (auto v = get(name)) return *v;
  throw std::out_of_range("no value named '" + std::string(name) + "'");
}

std::vector<std::string_view> string_pairs::get_all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : items_)
    if (k == name) out.emplace_back(v);
  return out;
}

}  // namespace loupe
