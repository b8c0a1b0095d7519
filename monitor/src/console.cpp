// The console's listener and sessions: one thread, one io_context, a
// coroutine per session speaking a telnet-tolerant line protocol.
#include <loupe/monitor/console.hpp>

#include "commands/table.hpp"
#include "session.hpp"

#include <loupe/runtime/log.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cstdio>
#include <list>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unistd.h>

namespace loupe::monitor {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_line = 4096;
constexpr std::string_view prompt = "loupe> ";

// Telnet (RFC 854): IAC (255) starts a command; WILL/WONT/DO/DONT (251-254)
// take one option byte; SB (250) runs to IAC SE (255 240); IAC IAC is a data
// byte 255. The console negotiates nothing, so all of it is dropped.
class telnet_filter {
 public:
  /// Feeds one byte; returns true when it is data.
  bool data(unsigned char c) {
    switch (state_) {
      case state::data:
        if (c == 255) {
          state_ = state::iac;
          return false;
        }
        return true;
      case state::iac:
        if (c >= 251 && c <= 254) state_ = state::option;
        else if (c == 250) state_ = state::sub;
        else state_ = state::data;  // a two-byte command (or IAC IAC: a 255 we do not need)
        return false;
      case state::option: state_ = state::data; return false;
      case state::sub:
        if (c == 255) state_ = state::sub_iac;
        return false;
      case state::sub_iac: state_ = c == 240 ? state::data : state::sub; return false;
    }
    return false;
  }

 private:
  enum class state { data, iac, option, sub, sub_iac } state_ = state::data;
};

std::string crlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (char c : text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

// Commands per second a session may run, with a burst for pasted scripts.
// A token bucket: take() says how long to wait for the next token.
class rate_limit {
 public:
  static constexpr double per_second = 10;
  static constexpr double burst = 20;
  std::chrono::steady_clock::duration take() {
    const auto now = std::chrono::steady_clock::now();
    tokens_ = std::min(burst, tokens_ + std::chrono::duration<double>(now - last_).count() * per_second);
    last_ = now;
    tokens_ -= 1;
    if (tokens_ >= 0) return {};
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(-tokens_ /
                                                                                                         per_second));
  }

 private:
  double tokens_ = burst;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// How long a new connection has to show it is HTTP before it gets the banner.
constexpr auto sniff_window = 150ms;
// How long an accept that failed (EMFILE, ENOMEM) waits before the next one.
constexpr auto accept_backoff = 100ms;

}  // namespace

struct console::impl {
  impl(const console_options& o, application* app) : opts(o), cmds(o, app) {}
  const console_options& opts;
  // Declared before the context: destroying it destroys the sessions'
  // suspended coroutines, which still use these.
  detail::command_table cmds;
  std::vector<http_endpoint> endpoints;
  log::throttled_warning accept_warning;
  std::mutex sessions_m;  // guards `sessions` (console::stop reads it after the thread)
  std::list<std::weak_ptr<detail::connection_state>> sessions;
  std::size_t open = 0;  // connections being served (console thread only)
  asio::io_context ctx{1};
  std::unique_ptr<tcp::acceptor> acceptor;
  std::thread thread;

  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, s] = co_await acceptor->async_accept(nothrow);
      if (ec) {
        if (is_cancellation(ec) || !acceptor->is_open()) co_return;
        // E.g. EMFILE: the pending connection stays in the backlog, so the
        // next accept would fail at once; back off instead of spinning.
        accept_warning("monitor: accept failed: " + ec.message() + "; the console keeps serving its sessions");
        asio::steady_timer t(ctx, accept_backoff);
        co_await t.async_wait(nothrow);
        continue;
      }
      auto c = std::make_shared<detail::connection_state>(std::move(s));
      {
        std::lock_guard lock(sessions_m);
        sessions.remove_if([](const auto& w) { return w.expired(); });
        sessions.push_back(c);
      }
      asio::co_spawn(ctx, serve(c), asio::detached);
    }
  }

  awaitable<void> sampler() {
    asio::steady_timer t(ctx);
    for (;;) {
      cmds.sample();
      t.expires_after(1s);
      auto [ec] = co_await t.async_wait(nothrow);
      if (ec) co_return;
    }
  }

  awaitable<bool> send(detail::connection_state& c, std::string_view text) {
    c.arm(send_timeout);
    auto [ec, n] = co_await asio::async_write(c.socket, asio::buffer(text), nothrow);
    c.disarm();
    co_return !ec;
  }

  // One connection: refused past the session limit, else HTTP or a console session.
  awaitable<void> serve(std::shared_ptr<detail::connection_state> c) {
    ++open;
    struct count {
      std::size_t& n;
      ~count() { --n; }
    } counted{open};
    if (open > opts.max_sessions) {
      const std::string refusal = "loupe monitor: too many sessions (" + std::to_string(opts.max_sessions) +
                                  " open, --monitor-max-sessions); try again later\r\n";
      co_await send(*c, refusal);
      c->close();
      co_return;
    }
    if (co_await detail::starts_with_http(*c, sniff_window)) {
      co_await detail::serve_http(c, endpoints, opts.read_only);
      co_return;
    }
    co_await session(*c);
    c->close();
  }

  // The next bytes of a console session, or nothing when it has ended or
  // sat idle past the timeout (then it has been told so).
  awaitable<std::size_t> read_input(detail::connection_state& c, std::array<char, 1024>& buf, bool typed) {
    // Until its first command a session gets at most a minute: sixteen
    // connections that never type could hold every session otherwise.
    const auto timeout = typed ? opts.idle_timeout
                               : std::min<std::chrono::milliseconds>(opts.idle_timeout, first_command);
    c.arm(timeout);
    auto [ec, n] = co_await c.socket.async_read_some(asio::buffer(buf), nothrow);
    c.disarm();
    if (ec && c.expired) {
      const auto ms = timeout.count();
      const std::string bye = "\r\nclosing: no input for " +
                              (ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms") +
                              " (--monitor-idle-timeout-s)\r\n";
      co_await send(c, bye);
    }
    co_return ec ? 0 : n;
  }

  // Waits, if the session has typed faster than a person does, for its next
  // command's turn: a script looping `ps` gets 10 a second, not thousands.
  awaitable<void> pace(rate_limit& budget) {
    const auto wait = budget.take();
    if (wait <= std::chrono::steady_clock::duration::zero()) co_return;
    asio::steady_timer t(ctx, wait);
    co_await t.async_wait(nothrow);
  }

  // Runs one command line; a command that takes time (run_async) suspends
  // this session only.
  awaitable<std::string> execute(std::string_view line, bool& quit, detail::connection_state& c) {
    if (auto job = cmds.async_command(line)) {
      try {
        co_return co_await std::move(*job);
      } catch (const std::exception& e) {
        co_return "error: " + std::string(e.what()) + "\n";
      }
    }
    const detail::reply r = cmds.run(line);
    quit = std::holds_alternative<detail::end_session>(r);
    std::string out = detail::text(r);
    // After `cancel ID`: wait (bounded) for the task to end and say how.
    const auto* cancelled = std::get_if<detail::cancel_reply>(&r);
    if (cancelled && cancelled->status == detail::cancel_reply::requested) {
      const std::string first = crlf(out);
      if (!co_await send(c, first)) {
        quit = true;
        co_return std::string();
      }
      asio::steady_timer t(ctx);
      std::optional<std::string> outcome;
      for (int k = 0; k < detail::cancel_polls && !(outcome = detail::cancel_outcome(cancelled->id)); ++k) {
        t.expires_after(detail::cancel_poll_interval);
        co_await t.async_wait(nothrow);
      }
      out = outcome ? *outcome : detail::still_alive(cancelled->id);
    }
    co_return out;
  }

  awaitable<void> session(detail::connection_state& c) {
    const std::string banner = crlf(detail::banner(cmds));
    // GCC 12 destroys temporaries built inside a co_await expression twice:
    // every text sent below is a named variable.
    const std::string hello = banner + std::string(prompt);
    if (!co_await send(c, hello)) co_return;
    telnet_filter telnet;
    rate_limit commands_budget;
    bool typed = false;
    std::string line;
    bool overlong = false;
    std::array<char, 1024> buf;
    for (;;) {
      const std::size_t n = co_await read_input(c, buf, typed);
      if (n == 0) co_return;
      typed = true;
      for (std::size_t i = 0; i < n; ++i) {
        const auto ch = static_cast<unsigned char>(buf[i]);
        if (!telnet.data(ch)) continue;
        if (ch == 4 && line.empty()) co_return;  // Ctrl-D
        if (ch != '\n') {
          if (ch == '\r' || ch == '\0') continue;  // CR LF and CR NUL both end in \n or are noise
          if (line.size() < max_line) line += static_cast<char>(ch);
          else overlong = true;
          continue;
        }
        std::string out;
        bool quit = false;
        if (overlong) out = "error: line longer than " + std::to_string(max_line) + " bytes ignored\n";
        else {
          co_await pace(commands_budget);
          out = co_await execute(line, quit, c);
        }
        line.clear();
        overlong = false;
        std::string reply = crlf(out);
        if (!quit) reply += prompt;
        if (!co_await send(c, reply) || quit) co_return;
      }
    }
  }

  static constexpr auto send_timeout = 30s;
  static constexpr std::chrono::milliseconds first_command{60s};
};

console::console(console_options opts) : opts_(std::move(opts)) {}

console::~console() {
  stop();
  if (reserved_fd_ >= 0) ::close(reserved_fd_);
}

void console::add_flags(flag_set& flags) {
  enabled_flag_ = opts_.enabled ? "on" : "off";
  flags.add_choice("monitor", &enabled_flag_, {"on", "off"}, "the live console (telnet or nc to it)");
  flags.add_string("monitor-host", &opts_.host, "console address (loopback unless --monitor-allow-remote)");
  flags.add_int("monitor-port", &opts_.port, 0, 65535, "console TCP port (0: any free port)");
  flags.add_bool("monitor-allow-remote", &opts_.allow_remote,
                 "let the console listen on a non-loopback address (it can cancel tasks)");
  flags.add_bool("monitor-read-only", &opts_.read_only, "refuse cancel and log-level in the console");
  flags.add_size("monitor-max-sessions", &opts_.max_sessions, 1, 1000,
                 "console connections at once (one more is refused with a message)");
  idle_timeout_s_ = std::chrono::duration_cast<std::chrono::seconds>(opts_.idle_timeout).count();
  flags.add_int("monitor-idle-timeout-s", &idle_timeout_s_, 1, 7 * 24 * 3600,
                "close a console session after this many seconds without input");
}

void console::add_command(extra_command c) {
  if (impl_) throw std::logic_error("console::add_command: the console has started");
  extra_.push_back(std::move(c));
}

void console::add_http_endpoint(http_endpoint e) {
  if (impl_) throw std::logic_error("console::add_http_endpoint: the console has started");
  endpoints_.push_back(std::move(e));
}

bool console::enabled() const noexcept { return opts_.enabled && enabled_flag_ == "on"; }

void console::start(application& app) { start_with(&app); }
void console::start() { start_with(nullptr); }

namespace {
asio::ip::address console_address(const console_options& o) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(o.host == "localhost" ? "127.0.0.1" : o.host, ec);
  if (ec) throw std::invalid_argument("--monitor-host '" + o.host + "' is not an IP address");
  if (!addr.is_loopback() && !o.allow_remote)
    throw std::invalid_argument("--monitor-host " + o.host +
                                " is not a loopback address; the console can cancel tasks, so it listens on "
                                "loopback only unless --monitor-allow-remote is given");
  return addr;
}
}  // namespace

namespace {
// Binds and listens on the console's address; a configuration problem (the
// port is taken, the address is not this host's) says so in one line.
std::unique_ptr<tcp::acceptor> bind_console(asio::io_context& ctx, const console_options& o,
                                            const asio::ip::address& addr) {
  boost::system::error_code ec;
  auto acc = std::make_unique<tcp::acceptor>(ctx);
  const tcp::endpoint ep(addr, static_cast<unsigned short>(o.port));
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("the monitor console cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " +
                             ec.message() + " (--monitor-host, --monitor-port; --monitor off for none)");
  return acc;
}
}  // namespace

void console::check() {
  if (!enabled() || impl_ || reserved_fd_ >= 0) return;
  // Bound now, before the application's port and its banner: a console that
  // cannot listen stops start-up with exit 2 (it printed "Running on" and then
  // exited 1).
  asio::io_context scratch;
  auto acc = bind_console(scratch, opts_, console_address(opts_));
  reserved_fd_ = acc->release();
}

void console::start_with(application* app) {
  opts_.enabled = enabled();
  if (!opts_.enabled || impl_) return;
  if (idle_timeout_s_ > 0) opts_.idle_timeout = std::chrono::seconds(idle_timeout_s_);
  const auto addr = console_address(opts_);
  auto i = std::make_unique<impl>(opts_, app);
  for (auto& c : extra_) i->cmds.add(c);
  i->endpoints = endpoints_;
  if (reserved_fd_ >= 0) {
    i->acceptor = std::make_unique<tcp::acceptor>(i->ctx, addr.is_v6() ? tcp::v6() : tcp::v4(),
                                                  std::exchange(reserved_fd_, -1));
  } else {
    i->acceptor = bind_console(i->ctx, opts_, addr);
  }
  port_ = i->acceptor->local_endpoint().port();
  asio::co_spawn(i->ctx, i->accept_loop(), asio::detached);
  asio::co_spawn(i->ctx, i->sampler(), asio::detached);
  i->thread = std::thread([ctx = &i->ctx] { ctx->run(); });
  impl_ = std::move(i);
  std::string host = addr.to_string();
  if (addr.is_v6()) host = "[" + host + "]";
  std::printf("======== Monitor console on %s:%u (telnet or nc) ========\n", host.c_str(), static_cast<unsigned>(port_));
  std::fflush(stdout);
  log::runtime().info("monitor console on {}:{}{}", host, port_, opts_.read_only ? " (read-only)" : "");
}

void console::stop() {
  if (!impl_) return;
  auto& i = *impl_;
  i.ctx.stop();
  if (i.thread.joinable()) i.thread.join();
  // The thread is gone: close what is open; destroying the context destroys
  // the sessions' suspended coroutines.
  boost::system::error_code ignored;
  i.acceptor->close(ignored);
  for (auto& w : i.sessions)
    if (auto s = w.lock()) s->close();
  impl_.reset();
}

unsigned short console::port() const noexcept { return port_; }

std::string console::execute(std::string_view line) {
  std::unique_ptr<detail::command_table> local;
  detail::command_table* cmds = impl_ ? &impl_->cmds : nullptr;
  if (!cmds) {
    local = std::make_unique<detail::command_table>(opts_, nullptr);
    for (auto& c : extra_) local->add(c);
    cmds = local.get();
  }
  if (auto job = cmds->async_command(line)) {
    // On a context of its own, on this thread.
    asio::io_context io;
    std::string out;
    asio::co_spawn(io, std::move(*job), [&](std::exception_ptr e, std::string r) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          r = "error: " + std::string(x.what()) + "\n";
        } catch (...) {
          r = "error: the command failed\n";
        }
      }
      out = std::move(r);
    });
    io.run();
    return out;
  }
  const detail::reply r = cmds->run(line);
  std::string out = detail::text(r);
  const auto* cancelled = std::get_if<detail::cancel_reply>(&r);
  if (cancelled && cancelled->status == detail::cancel_reply::requested) {
    for (int k = 0; k < detail::cancel_polls; ++k) {
      if (auto outcome = detail::cancel_outcome(cancelled->id)) return out + *outcome;
      std::this_thread::sleep_for(detail::cancel_poll_interval);
    }
    out += detail::still_alive(cancelled->id);
  }
  return out;
}

}  // namespace loupe::monitor
