// The console's listener and sessions: one thread, one io_context, a
// coroutine per session speaking a telnet-tolerant line protocol.
#include <loupe/monitor/console.hpp>

#include "commands.hpp"

#include <loupe/runtime/log.hpp>
#include <loupe/runtime/loop.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

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
      case state::option:
        state_ = state::data;
        return false;
      case state::sub:
        if (c == 255) state_ = state::sub_iac;
        return false;
      case state::sub_iac:
        state_ = c == 240 ? state::data : state::sub;
        return false;
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

}  // namespace

struct console::impl {
  impl(const console_options& o, application* app) : cmds(o, app) {}
  asio::io_context ctx{1};
  std::unique_ptr<tcp::acceptor> acceptor;
  std::thread thread;
  detail::commands cmds;
  std::mutex sessions_m;
  std::list<std::weak_ptr<tcp::socket>> sessions;
  std::size_t loops_at_start = 0;

  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, s] = co_await acceptor->async_accept(nothrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
        continue;  // e.g. EMFILE: keep serving the consoles already open
      }
      auto sock = std::make_shared<tcp::socket>(std::move(s));
      {
        std::lock_guard lock(sessions_m);
        sessions.remove_if([](const auto& w) { return w.expired(); });
        sessions.push_back(sock);
      }
      asio::co_spawn(ctx, session(sock), asio::detached);
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

  awaitable<bool> send(tcp::socket& s, std::string_view text) {
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(text), nothrow);
    co_return !ec;
  }

  awaitable<void> session(std::shared_ptr<tcp::socket> s) {
    std::size_t loops = 0, tasks = 0;
    loop::for_each([&](const loop& l) {
      ++loops;
      tasks += l.live_task_count();
    });
    const std::string banner = crlf(
        "loupe monitor: pid " + std::to_string(::getpid()) + ", " + std::to_string(loops) + " loop(s), " +
        std::to_string(tasks) + " live task(s)" + (cmds_read_only ? " (read-only)" : "") +
        "\ntype help for commands, quit to leave\n");
    // GCC 12 destroys temporaries built inside a co_await expression twice:
    // every text sent below is a named variable.
    const std::string hello = banner + std::string(prompt);
    if (!co_await send(*s, hello)) co_return;
    telnet_filter telnet;
    std::string line;
    bool overlong = false;
    std::array<char, 1024> buf;
    for (;;) {
      auto [ec, n] = co_await s->async_read_some(asio::buffer(buf), nothrow);
      if (ec) co_return;
      for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(buf[i]);
        if (!telnet.data(c)) continue;
        if (c == 4 && line.empty()) co_return;  // Ctrl-D
        if (c != '\n') {
          if (c == '\r' || c == '\0') continue;  // CR LF and CR NUL both end in \n or are noise
          if (line.size() < max_line) line += static_cast<char>(c);
          else overlong = true;
          continue;
        }
        std::string out;
        bool quit = false;
        if (overlong) {
          out = "error: line longer than " + std::to_string(max_line) + " bytes ignored\n";
        } else {
          out = cmds.run(line, quit);
          // After `cancel ID`: wait (bounded) for the task to end and say how.
          if (const auto id = detail::commands::pending_cancel(out)) {
            const std::string first = crlf(out);
            if (!co_await send(*s, first)) co_return;
            asio::steady_timer t(ctx);
            std::optional<std::string> outcome;
            for (int k = 0; k < detail::commands::cancel_polls && !(outcome = cmds.cancel_outcome(*id)); ++k) {
              t.expires_after(detail::commands::cancel_poll_interval);
              co_await t.async_wait(nothrow);
            }
            out = outcome ? *outcome : detail::commands::still_alive(*id);
          }
        }
        line.clear();
        overlong = false;
        std::string reply = crlf(out);
        if (!quit) reply += prompt;
        if (!co_await send(*s, reply)) co_return;
        if (quit) {
          boost::system::error_code ignored;
          s->shutdown(tcp::socket::shutdown_both, ignored);
          s->close(ignored);
          co_return;
        }
      }
    }
  }

  bool cmds_read_only = false;
};

console::console(console_options opts) : opts_(std::move(opts)) {}

console::~console() { stop(); }

void console::add_flags(flag_set& flags) {
  enabled_flag_ = opts_.enabled ? "on" : "off";
  flags.add_choice("monitor", &enabled_flag_, {"on", "off"}, "the live console (telnet or nc to it)");
  flags.add_string("monitor-host", &opts_.host, "console address (loopback unless --monitor-allow-remote)");
  flags.add_int("monitor-port", &opts_.port, 0, 65535, "console TCP port (0: any free port)");
  flags.add_bool("monitor-allow-remote", &opts_.allow_remote,
                 "let the console listen on a non-loopback address (it can cancel tasks)");
  flags.add_bool("monitor-read-only", &opts_.read_only, "refuse cancel and log-level in the console");
}

void console::add_command(extra_command c) {
  if (impl_) throw std::logic_error("console::add_command: the console has started");
  extra_.push_back(std::move(c));
}

void console::start(application& app) { start_with(&app); }
void console::start() { start_with(nullptr); }

void console::start_with(application* app) {
  opts_.enabled = opts_.enabled && enabled_flag_ == "on";
  if (!opts_.enabled || impl_) return;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(opts_.host == "localhost" ? "127.0.0.1" : opts_.host, ec);
  if (ec) throw std::invalid_argument("--monitor-host '" + opts_.host + "' is not an IP address");
  if (!addr.is_loopback() && !opts_.allow_remote)
    throw std::invalid_argument("--monitor-host " + opts_.host +
                                " is not a loopback address; the console can cancel tasks, so it listens on "
                                "loopback only unless --monitor-allow-remote is given");
  auto i = std::make_unique<impl>(opts_, app);
  i->cmds_read_only = opts_.read_only;
  for (auto& c : extra_) i->cmds.add(c);
  i->acceptor = std::make_unique<tcp::acceptor>(i->ctx);
  const tcp::endpoint ep(addr, static_cast<unsigned short>(opts_.port));
  i->acceptor->open(ep.protocol());
  i->acceptor->set_option(tcp::acceptor::reuse_address(true));
  i->acceptor->bind(ep, ec);
  if (ec)
    throw std::system_error(ec, "monitor console cannot listen on " + opts_.host + ":" + std::to_string(opts_.port));
  i->acceptor->listen();
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
    if (auto s = w.lock()) s->close(ignored);
  impl_.reset();
}

unsigned short console::port() const noexcept { return port_; }

std::string console::execute(std::string_view line) {
  std::unique_ptr<detail::commands> local;
  detail::commands* cmds = impl_ ? &impl_->cmds : nullptr;
  if (!cmds) {
    local = std::make_unique<detail::commands>(opts_, nullptr);
    for (auto& c : extra_) local->add(c);
    cmds = local.get();
  }
  bool quit = false;
  std::string out = cmds->run(line, quit);
  if (const auto id = detail::commands::pending_cancel(out)) {
    for (int k = 0; k < detail::commands::cancel_polls; ++k) {
      if (auto outcome = cmds->cancel_outcome(*id)) return out + *outcome;
      std::this_thread::sleep_for(detail::commands::cancel_poll_interval);
    }
    out += detail::commands::still_alive(*id);
  }
  return out;
}

}  // namespace loupe::monitor
