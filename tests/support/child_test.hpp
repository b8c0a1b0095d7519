// Test support: one test of this same binary run in a child process, for the
// testkit's tests that fail on purpose (tests/testkit/): its exit code and
// everything it printed.
#pragma once

#include <loupe/testkit/process.hpp>

#include <chrono>
#include <string>

namespace loupe_test {

struct child_result {
  int code = 0;
  std::string out;  // stdout, then stderr
};

/// Runs the test `name` (DISABLED_ ones too) in a child; waits up to 30 s.
inline child_result run_child(const std::string& name) {
  loupe::testkit::child c({"/proc/self/exe", "--gtest_also_run_disabled_tests", "--gtest_filter=" + name});
  child_result r;
  r.code = c.wait_exit(std::chrono::seconds(30));
  r.out = c.stdout_text() + c.stderr_text();
  return r;
}

}  // namespace loupe_test
