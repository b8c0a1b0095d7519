// The in-memory network: listeners by name, process-wide, and connections
// as AF_UNIX socket pairs (see memory_network.hpp for why).
#include <loupe/runtime/memory_network.hpp>

#include "net/memory_listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <map>
#include <sys/socket.h>
#include <unistd.h>

namespace loupe {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

struct registry {
  std::mutex m;
  std::map<std::string, std::weak_ptr<detail::memory_listener>, std::less<>> by_name;
};

registry& listeners() {
  static registry r;  // never destroyed: listeners may close during static destruction
  return r;
}

std::shared_ptr<detail::memory_listener> find(std::string_view name) {
  auto& r = listeners();
  std::lock_guard lock(r.m);
  auto it = r.by_name.find(name);
  return it == r.by_name.end() ? nullptr : it->second.lock();
}

[[noreturn]] void refused(std::string_view name) {
  throw boost::system::system_error(asio::error::connection_refused,
                                    "no server listens on the in-memory network under '" + std::string(name) + "'");
}

// The socket is an AF_UNIX stream: Asio's stream operations only need a
// descriptor; TCP options set on it fail and are ignored by their callers.
// On failure `fd` is closed.
tcp::socket adopt(const asio::any_io_executor& ex, int fd, error_code& ec) {
  tcp::socket s(ex);
  s.assign(tcp::v4(), fd, ec);
  if (ec) ::close(fd);
  return s;
}

}  // namespace

namespace detail {

memory_listener::memory_listener(asio::any_io_executor ex, std::string name)
    : ex_(std::move(ex)), name_(std::move(name)), wake_(ex_, clock::time_point::max()) {}

std::shared_ptr<memory_listener> memory_listener::open(asio::any_io_executor ex, std::string name) {
  if (name.empty()) throw std::invalid_argument("an in-memory listener needs a name");
  auto l = std::shared_ptr<memory_listener>(new memory_listener(std::move(ex), name));
  auto& r = listeners();
  std::lock_guard lock(r.m);
  auto& slot = r.by_name[name];
  if (slot.lock())
    throw boost::system::system_error(asio::error::address_in_use,
                                      "cannot listen on the in-memory network under '" + name + "'");
  slot = l;
  return l;
}

memory_listener::~memory_listener() {
  // No accept can be waiting (it holds a reference), and the executor's
  // context may be shutting down (destroying frames): nothing to post.
  close(false);
}

void memory_listener::close(bool wake_accept) {
  std::deque<int> left;
  {
    std::lock_guard lock(m_);
    if (closed_) return;
    closed_ = true;
    left.swap(pending_);
  }
  for (int fd : left) ::close(fd);
  {
    auto& r = listeners();
    std::lock_guard lock(r.m);
    auto it = r.by_name.find(name_);
    if (it != r.by_name.end() && (it->second.expired() || it->second.lock().get() == this)) r.by_name.erase(it);
  }
  if (wake_accept) wake();
}

bool memory_listener::is_open() const {
  std::lock_guard lock(m_);
  return !closed_;
}

void memory_listener::wake() {
  // On the listener's executor, where its accept waits.
  asio::post(ex_, [w = weak_from_this()] {
    if (auto self = w.lock()) self->wake_.cancel();
  });
}

bool memory_listener::deliver(int fd) {
  {
    std::lock_guard lock(m_);
    if (closed_) return false;
    pending_.push_back(fd);
  }
  wake();
  return true;
}

awaitable<std::tuple<error_code, tcp::socket>> memory_listener::accept() {
  for (;;) {
    int fd = -1;
    {
      std::lock_guard lock(m_);
      if (closed_) co_return std::tuple{error_code(asio::error::operation_aborted), tcp::socket(ex_)};
      if (!pending_.empty()) {
        fd = pending_.front();
        pending_.pop_front();
      }
    }
    if (fd >= 0) {
      error_code ec;
      auto s = adopt(ex_, fd, ec);
      co_return std::tuple{ec, std::move(s)};
    }
    wake_.expires_at(clock::time_point::max());
    auto [ec] = co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    // Cancelled by wake() (a connection, or close) or by the task's own
    // cancellation; the latter ends the accept.
    if (ec && ec != asio::error::operation_aborted) co_return std::tuple{ec, tcp::socket(ex_)};
    if (ec && (co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
      co_return std::tuple{error_code(asio::error::operation_aborted), tcp::socket(ex_)};
  }
}

}  // namespace detail

memory_acceptor::memory_acceptor(const asio::any_io_executor& ex, std::string name)
    : impl_(detail::memory_listener::open(ex, std::move(name))) {}
memory_acceptor::~memory_acceptor() { impl_->close(); }
awaitable<std::tuple<error_code, tcp::socket>> memory_acceptor::accept() {
  auto keep = impl_;
  co_return co_await keep->accept();
}
void memory_acceptor::close() { impl_->close(); }
bool memory_acceptor::is_open() const { return impl_->is_open(); }
const std::string& memory_acceptor::name() const noexcept { return impl_->name(); }

bool memory_listening(std::string_view name) {
  auto l = find(name);
  return l && l->is_open();
}

tcp::socket memory_connect(const asio::any_io_executor& ex, std::string_view name) {
  auto l = find(name);
  if (!l) refused(name);
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
    throw boost::system::system_error(error_code(errno, boost::system::system_category()),
                                      "cannot open an in-memory connection to '" + std::string(name) + "'");
  if (!l->deliver(fds[1])) {
    ::close(fds[0]);
    ::close(fds[1]);
    refused(name);
  }
  error_code ec;
  auto s = adopt(ex, fds[0], ec);
  if (ec) throw boost::system::system_error(ec, "cannot open an in-memory connection");
  return s;
}

}  // namespace loupe
