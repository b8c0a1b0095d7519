// Test support: the same test on real time and on virtual time.
//
//   class ServerTimes : public on_both_clocks<Server> {};
//   TEST_P(ServerTimes, IdleConnectionsTimeOut) { ... }
//   INSTANTIATE_TEST_SUITE_P(Clock, ServerTimes, both_clocks, clock_mode_name);
//
// The VirtualTime instance calls use_virtual_time() before the fixture's own
// SetUp: its timeouts then take no real time.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace loupe_test {

enum class clock_mode { real, virtual_time };

inline const auto both_clocks = ::testing::Values(clock_mode::real, clock_mode::virtual_time);

inline std::string clock_mode_name(const ::testing::TestParamInfo<clock_mode>& i) {
  return i.param == clock_mode::real ? "RealTime" : "VirtualTime";
}

template <class Fixture>
class on_both_clocks : public Fixture, public ::testing::WithParamInterface<clock_mode> {
 protected:
  void SetUp() override {
    if (this->GetParam() == clock_mode::virtual_time) this->use_virtual_time();
    Fixture::SetUp();
  }
};

}  // namespace loupe_test
