// Private: request bodies and the process-wide budget for them.
//
// Beast's string_body reserves the whole declared Content-Length before a
// byte of the body has arrived, so 3,000 connections that each declared
// 1 MiB and sent 1 KB reserved 3 GB. counted_body grows as bytes arrive.
//
// The bytes held by request bodies are bounded in the whole process
// (server_options::max_body_bytes_in_flight). A body with a Content-Length is
// admitted before it is read: its length is reserved (an account, not memory),
// so an admitted body can always be read to its end; one that does not fit
// waits for room, in order of arrival (backpressure: its bytes stay in the
// kernel), until its body timeout — then 503. A chunked body, whose length is
// unknown, is charged as its bytes arrive, and refused (503) if that would
// pass the budget. What a request holds is given back when its response has
// been sent: the handler still has the body until then.
//
// (Charging only the bytes as they arrive, for every body, lets 1,000
// concurrent 900 KB uploads each get a quarter of the way and then all fail
// together: admission by declared length lets them finish, a few hundred at a
// time.)
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional/optional.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace loupe::detail {

/// The process-wide account of request body bytes. Thread-safe.
class body_budget {
 public:
  /// A body waiting for room.
  struct waiter {
    std::size_t want = 0;
    std::size_t limit = 0;
    bool admitted = false;         // guarded by the budget's mutex
    std::function<void()> wake;    // called (under the mutex) once admitted; must only post
  };

  static body_budget& process() {
    static body_budget b;
    return b;
  }

  std::size_t used() const noexcept { return used_.load(std::memory_order_relaxed); }

  /// Takes `n` if it fits under `limit` — and, for a new body, if nobody is
  /// waiting before it (`in_line`; a body already being read goes on).
  bool try_take(std::size_t n, std::size_t limit, bool in_line = true) {
    std::lock_guard lock(m_);
    if ((in_line && !queue_.empty()) || used_.load(std::memory_order_relaxed) + n > limit) return false;
    used_.fetch_add(n, std::memory_order_relaxed);
    return true;
  }
  /// Queues `w`; it is admitted (and woken) when room frees up.
  void enqueue(const std::shared_ptr<waiter>& w) {
    std::lock_guard lock(m_);
    queue_.push_back(w);
    admit_locked();
  }
  /// After a wait: true if `w` was admitted (it holds its bytes); otherwise
  /// it leaves the queue.
  bool finish_wait(const std::shared_ptr<waiter>& w) {
    std::lock_guard lock(m_);
    if (w->admitted) return true;
    for (auto it = queue_.begin(); it != queue_.end(); ++it)
      if (*it == w) {
        queue_.erase(it);
        break;
      }
    admit_locked();  // the next one may fit now
    return false;
  }
  void give(std::size_t n) {
    if (n == 0) return;
    std::lock_guard lock(m_);
    used_.fetch_sub(n, std::memory_order_relaxed);
    admit_locked();
  }

 private:
  void admit_locked() {
    while (!queue_.empty()) {
      auto& w = *queue_.front();
      if (used_.load(std::memory_order_relaxed) + w.want > w.limit) return;
      used_.fetch_add(w.want, std::memory_order_relaxed);
      w.admitted = true;
      w.wake();
      queue_.pop_front();
    }
  }

  std::mutex m_;
  std::atomic<std::size_t> used_{0};
  std::deque<std::shared_ptr<waiter>> queue_;
};

/// What one request holds of the budget; gives it back when destroyed.
class body_charge {
 public:
  explicit body_charge(std::size_t limit) noexcept : limit_(limit) {}
  ~body_charge() { release(); }
  body_charge(const body_charge&) = delete;
  body_charge& operator=(const body_charge&) = delete;

  std::size_t limit() const noexcept { return limit_; }
  /// Whether the body was admitted by its declared length (then its bytes
  /// are already accounted for as they arrive).
  bool reserved() const noexcept { return reserved_; }
  /// `n` bytes taken for this request by admission.
  void hold_reserved(std::size_t n) noexcept {
    held_ += n;
    reserved_ = true;
  }
  /// Charges `n` more bytes of a body of unknown length; false (nothing
  /// charged) if they do not fit.
  bool take(std::size_t n) {
    if (reserved_) return true;
    if (!body_budget::process().try_take(n, limit_, /*in_line=*/false)) return false;
    held_ += n;
    return true;
  }
  /// Gives back everything held (the body has been dropped).
  void release() {
    body_budget::process().give(held_);
    held_ = 0;
  }

 private:
  std::size_t limit_;
  std::size_t held_ = 0;
  bool reserved_ = false;
};

/// The error a body read fails with when the budget is spent.
inline boost::system::error_code over_budget() {
  return boost::system::errc::make_error_code(boost::system::errc::not_enough_memory);
}

/// A Beast body (reader only): a string that grows as the body arrives,
/// charged to a body_charge set before the body is read.
struct counted_body {
  struct value_type {
    std::string data;
    body_charge* charge = nullptr;
  };

  static std::uint64_t size(const value_type& v) noexcept { return v.data.size(); }

  class reader {
   public:
    template <bool IsRequest, class Fields>
    reader(boost::beast::http::header<IsRequest, Fields>&, value_type& body) : body_(body) {}

    // Nothing is reserved from the declared length.
    void init(const boost::optional<std::uint64_t>&, boost::system::error_code& ec) { ec = {}; }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
      const std::size_t n = boost::asio::buffer_size(buffers);
      if (body_.charge && !body_.charge->take(n)) {
        ec = over_budget();
        return 0;
      }
      const std::size_t at = body_.data.size();
      body_.data.resize(at + n);  // geometric growth, as a string does
      ec = {};
      return boost::asio::buffer_copy(boost::asio::buffer(body_.data.data() + at, n), buffers);
    }

    void finish(boost::system::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

}  // namespace loupe::detail
