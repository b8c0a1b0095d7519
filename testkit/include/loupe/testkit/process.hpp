// loupe/testkit/process.hpp — start a server program as a child process in tests.
//
//   loupe::testkit::child demo({LOUPE_DEMO_PATH, "--port", "0"});
//   unsigned short port = demo.wait_for_port();      // parses "Running on http://host:port"
//   demo.signal(SIGTERM);
//   int code = demo.wait_exit();                      // exit status, or 128+signal
//   std::string log = demo.stderr_text();
//
// Output is collected by background reader threads; every wait has a deadline
// and throws std::runtime_error (with what the child printed) when it passes.
// The destructor kills a child that is still running.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace loupe::testkit {

class child {
 public:
  explicit child(std::vector<std::string> argv);
  ~child();
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  int pid() const noexcept;
  /// Waits for the "Running on http(s)://HOST:PORT" line on stdout and returns PORT.
  unsigned short wait_for_port(std::chrono::milliseconds deadline = std::chrono::seconds(20));
  void signal(int signo);
  /// Waits for the child to exit: its exit code, or 128 + the signal that killed it.
  int wait_exit(std::chrono::milliseconds deadline = std::chrono::seconds(20));
  /// Returns true if the child exits within `deadline`.
  bool exited_within(std::chrono::milliseconds deadline);
  /// Waits until stderr contains `needle`; false if `deadline` passes first.
  bool wait_for_stderr(std::string_view needle, std::chrono::milliseconds deadline);
  /// The same for stdout.
  bool wait_for_stdout(std::string_view needle, std::chrono::milliseconds deadline);
  std::string stdout_text() const;
  std::string stderr_text() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace loupe::testkit
