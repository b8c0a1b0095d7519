// Private: a server's listener on the in-memory network (memory_network.hpp).
// Registered by name process-wide; memory_connect() hands it the server end
// of a socket pair from any thread, and its accept() (on the listener's
// executor) turns that into a socket, as a TCP acceptor would.
#pragma once

#include <loupe/runtime/memory_network.hpp>
#include <loupe/runtime/task.hpp>
#include <loupe/runtime/timer.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

namespace loupe::detail {

class memory_listener : public std::enable_shared_from_this<memory_listener> {
 public:
  /// Listens under `name`; throws boost::system::system_error
  /// (address_in_use) if a listener of this process has it already.
  static std::shared_ptr<memory_listener> open(boost::asio::any_io_executor ex, std::string name);
  ~memory_listener();

  /// The next connection (on the listener's executor); operation_aborted
  /// once closed.
  awaitable<std::tuple<boost::system::error_code, boost::asio::ip::tcp::socket>> accept();
  /// Stops listening: the name is free again, a pending accept ends, and
  /// connections not yet accepted are closed (their clients read EOF).
  void close() { close(true); }
  bool is_open() const;
  const std::string& name() const noexcept { return name_; }

  /// Any thread: queues the server end `fd` of a new connection. False
  /// (and `fd` left to the caller) once closed.
  bool deliver(int fd);

 private:
  memory_listener(boost::asio::any_io_executor ex, std::string name);
  void close(bool wake_accept);
  void wake();

  boost::asio::any_io_executor ex_;
  std::string name_;
  mutable std::mutex m_;
  std::deque<int> pending_;
  bool closed_ = false;
  loupe::timer wake_;  // an accept waits on it (never due); cancelled to wake it
};

}  // namespace loupe::detail
