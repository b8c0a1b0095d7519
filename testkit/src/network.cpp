// testkit: addresses on either network, and chaos links (network.hpp).
#include <loupe/testkit/network.hpp>

#include <loupe/runtime/log.hpp>
#include <loupe/runtime/memory_network.hpp>
#include <loupe/runtime/timer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <random>
#include <set>
#include <sstream>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <vector>

namespace loupe::testkit {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
std::atomic<unsigned> link_count{0};

void describe_direction(std::ostringstream& out, const char* name, const direction_faults& f) {
  std::ostringstream d;
  if (f.delay.count()) d << " delay=" << std::chrono::duration<double, std::milli>(f.delay).count() << "ms";
  if (f.segment_bytes) d << " segment_bytes=" << f.segment_bytes << (f.random_segments ? " (random sizes)" : "");
  if (f.bytes_per_second) d << " bytes_per_second=" << f.bytes_per_second;
  if (f.stop_after) d << " stop_after=" << *f.stop_after;
  if (f.close_after) d << " close_after=" << *f.close_after;
  if (f.reset_after) d << " reset_after=" << *f.reset_after;
  if (f.corrupt_at) d << " corrupt_at=" << *f.corrupt_at;
  if (!d.str().empty()) out << " " << name << d.str() << ";";
}
}  // namespace

const char* to_string(network n) noexcept { return n == network::memory ? "memory" : "tcp"; }

std::string address::url(std::string_view path, std::string_view scheme) const {
  std::string out(scheme);
  out += "://";
  out += in_memory() ? memory : tcp.address().to_string() + ":" + std::to_string(tcp.port());
  if (path.empty() || path.front() != '/') out += '/';
  out += path;
  return out;
}

std::string address::text() const {
  return in_memory() ? "memory:" + memory : tcp.address().to_string() + ":" + std::to_string(tcp.port());
}

struct chaos_link::impl : std::enable_shared_from_this<impl> {
  impl(loop& l, address up, link_faults f) : lp(l), upstream(std::move(up)), faults(std::move(f)) {}

  struct conn {
    conn(loop& l, std::size_t i)
        : down(l.context()), up(l.context()), park{loupe::timer(l.context()), loupe::timer(l.context())}, index(i) {}
    tcp::socket down;  // to the client
    tcp::socket up;    // to the server
    loupe::timer park[2];  // a direction that stopped reading (or an accept stall) waits here
    std::size_t index;
    std::uint64_t task = 0;  // its task (chaos.link), for close() to join
    bool ended = false;
  };

  loop& lp;
  address upstream;
  link_faults faults;
  address where;
  std::string text;
  std::optional<memory_acceptor> mem;
  std::optional<tcp::acceptor> acc;
  std::set<std::shared_ptr<conn>> conns;
  std::size_t accepted = 0;
  std::size_t writes[2] = {0, 0};  // to the server, to the client
  bool closing = false;
  std::uint64_t accept_task = 0;

  // Ends a connection: both sockets closed (with an RST over TCP if `reset`).
  static void end(conn& c, bool reset) {
    if (c.ended) return;
    c.ended = true;
    error_code ignored;
    for (auto* s : {&c.down, &c.up}) {
      if (!s->is_open()) continue;
      if (reset) {
        s->set_option(asio::socket_base::linger(true, 0), ignored);
      } else {
        s->shutdown(tcp::socket::shutdown_both, ignored);
      }
      s->close(ignored);
    }
    for (auto& p : c.park) p.cancel();
  }

  // Stops accepting and ends every connection (their tasks end at their next turn).
  void stop() {
    closing = true;
    if (mem) mem->close();
    error_code ignored;
    if (acc) acc->close(ignored);
    for (auto& c : conns) end(*c, false);
  }

  awaitable<void> accept_loop(std::shared_ptr<impl> self) {
    for (;;) {
      error_code ec;
      tcp::socket s(lp.context());
      if (mem) {
        std::tie(ec, s) = co_await mem->accept();
      } else {
        std::tie(ec, s) = co_await acc->async_accept(nothrow);
      }
      if (ec || closing) co_return;
      auto c = std::make_shared<conn>(lp, accepted++);
      c->down = std::move(s);
      error_code ignored;
      c->down.set_option(tcp::no_delay(true), ignored);
      conns.insert(c);
      c->task = spawn(lp, "chaos.link", serve(self, c));
    }
  }

  awaitable<void> serve(std::shared_ptr<impl> self, std::shared_ptr<conn> c) {
    loupe::detail::set_task_what(text);
    struct done {
      impl& s;
      std::shared_ptr<conn> c;
      ~done() {
        end(*c, false);
        s.conns.erase(c);
      }
    } guard{*self, c};
    if (faults.accept_stall.count() > 0) {
      c->park[0].expires_after(std::chrono::duration_cast<loupe::clock::duration>(faults.accept_stall));
      co_await c->park[0].async_wait(nothrow);
      if (c->ended) co_return;
    }
    if (upstream.in_memory()) {
      try {
        c->up = memory_connect(lp.get_executor(), upstream.memory);
      } catch (const std::exception&) {
        co_return;  // the client reads end of stream, as from a proxy whose upstream is gone
      }
    } else {
      auto [ec] = co_await c->up.async_connect(upstream.tcp, nothrow);
      if (ec) co_return;
      error_code ignored;
      c->up.set_option(tcp::no_delay(true), ignored);
    }
    // The client's bytes on a task of their own; the server's on this one.
    const auto other = spawn(lp, "chaos.link", pump(self, c, true));
    co_await pump(self, c, false);
    co_await join(lp, other);
  }

  // The bytes of one direction: read, change as the faults say, write.
  awaitable<void> pump([[maybe_unused]] std::shared_ptr<impl> self, std::shared_ptr<conn> c, bool to_server) {
    if (to_server) loupe::detail::set_task_what(text);
    const direction_faults& f = to_server ? faults.to_server : faults.to_client;
    tcp::socket& from = to_server ? c->down : c->up;
    tcp::socket& to = to_server ? c->up : c->down;
    loupe::timer& park = c->park[to_server ? 0 : 1];
    // One generator per connection and direction: the same seed gives the
    // same segments and corruption whatever order the connections run in.
    std::mt19937_64 rng(faults.seed ^ (0x9e3779b97f4a7c15ULL * (2 * c->index + (to_server ? 1 : 0) + 1)));
    std::vector<char> buf(16 * 1024);
    std::size_t seen = 0;
    for (;;) {
      if (c->ended) co_return;
      if (f.close_after && seen >= *f.close_after) co_return end(*c, false);
      if (f.reset_after && seen >= *f.reset_after) co_return end(*c, true);
      if (f.stop_after && seen >= *f.stop_after) {
        // A reader that stalls: nothing more is read; the sender's writes
        // wait once the buffers are full.
        park.expires_at(loupe::clock::time_point::max());
        co_await park.async_wait(nothrow);
        co_return;
      }
      std::size_t want = buf.size();
      for (const auto& limit : {f.stop_after, f.close_after, f.reset_after})
        if (limit) want = std::min(want, *limit - seen);
      auto [ec, n] = co_await from.async_read_some(asio::buffer(buf.data(), want), nothrow);
      if (ec) {
        // End of stream goes on as a half-close; a reset as a reset.
        error_code ignored;
        if (ec == asio::error::eof) {
          to.shutdown(tcp::socket::shutdown_send, ignored);
        } else if (!c->ended) {
          end(*c, true);
        }
        co_return;
      }
      if (f.corrupt_at && *f.corrupt_at >= seen && *f.corrupt_at < seen + n)
        buf[*f.corrupt_at - seen] ^= static_cast<char>(1 + rng() % 255);
      if (f.delay.count() > 0) {
        park.expires_after(std::chrono::duration_cast<loupe::clock::duration>(f.delay));
        co_await park.async_wait(nothrow);
        if (c->ended) co_return;
      }
      std::size_t off = 0;
      while (off < n) {
        std::size_t piece = n - off;
        if (f.segment_bytes) piece = std::min(piece, f.random_segments ? 1 + rng() % f.segment_bytes : f.segment_bytes);
        if (f.bytes_per_second) {
          // A piece arrives once its last byte would have crossed the link.
          park.expires_after(std::chrono::nanoseconds(piece * 1'000'000'000ULL / f.bytes_per_second));
          co_await park.async_wait(nothrow);
          if (c->ended) co_return;
        }
        auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf.data() + off, piece), nothrow);
        if (wec) {
          if (!c->ended) end(*c, true);
          co_return;
        }
        off += piece;
        ++writes[to_server ? 0 : 1];
        if (f.segment_bytes && off < n) co_await delivered(to);
      }
      seen += n;
    }
  }

  // Until the peer has read what was written to `s` (in memory the kernel
  // knows at once; over TCP only one loop round, the kernel may merge).
  awaitable<void> delivered(tcp::socket& s) {
    loupe::timer t(lp.context());
    for (int round = 0; s.is_open(); ++round) {
      int queued = 0;
      if (upstream.in_memory()) {
        if (::ioctl(s.native_handle(), SIOCOUTQ, &queued) != 0 || queued == 0) co_return;
      } else if (round > 0) {
        co_return;
      }
      // A few loop rounds (the reader runs in them); then, for a reader
      // that takes its time, a millisecond at a time.
      t.expires_after(round < 8 ? loupe::clock::duration(0) : std::chrono::milliseconds(1));
      co_await t.async_wait(nothrow);
    }
  }
};

chaos_link::chaos_link(loop& l, const address& upstream, link_faults faults)
    : impl_(std::make_shared<impl>(l, upstream, std::move(faults))) {
  auto& f = impl_->faults;
  const unsigned n = ++link_count;
  if (f.name.empty()) f.name = "link-" + std::to_string(n);
  if (f.seed == 0) f.seed = (std::uint64_t(std::random_device{}()) << 32 | std::random_device{}()) | 1;
  for (const auto* d : {&f.to_server, &f.to_client}) {
    if (d->segment_bytes == 0 && d->random_segments)
      throw std::invalid_argument("chaos link: random_segments needs segment_bytes (the largest segment)");
  }
  if (upstream.in_memory()) {
    impl_->mem.emplace(l.get_executor(), "chaos-" + std::to_string(n) + ".memory");
    impl_->where.memory = impl_->mem->name();
  } else {
    impl_->acc.emplace(l.context(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    impl_->where.tcp = impl_->acc->local_endpoint();
  }
  std::ostringstream out;
  out << "chaos link '" << f.name << "' seed " << f.seed << " " << impl_->where.text() << " -> " << upstream.text()
      << ":";
  describe_direction(out, "to_server", f.to_server);
  describe_direction(out, "to_client", f.to_client);
  if (f.accept_stall.count())
    out << " accept_stall=" << std::chrono::duration<double, std::milli>(f.accept_stall).count() << "ms;";
  impl_->text = out.str();
  if (impl_->text.back() == ';') impl_->text.pop_back();
  log::info(log::runtime(), impl_->text);
  impl_->accept_task = spawn(l, "chaos.accept", impl_->accept_loop(impl_));
}

chaos_link::~chaos_link() { impl_->stop(); }

const address& chaos_link::where() const noexcept { return impl_->where; }
std::uint64_t chaos_link::seed() const noexcept { return impl_->faults.seed; }
std::string chaos_link::describe() const { return impl_->text; }
std::size_t chaos_link::connections_accepted() const noexcept { return impl_->accepted; }
std::size_t chaos_link::connections_open() const noexcept { return impl_->conns.size(); }
std::size_t chaos_link::writes_to_server() const noexcept { return impl_->writes[0]; }
std::size_t chaos_link::writes_to_client() const noexcept { return impl_->writes[1]; }

awaitable<void> chaos_link::close() {
  auto self = impl_;
  self->stop();
  co_await join(self->lp, self->accept_task);
  std::vector<std::uint64_t> tasks;
  for (const auto& c : self->conns) tasks.push_back(c->task);
  for (auto id : tasks) co_await join(self->lp, id);
}

}  // namespace loupe::testkit
