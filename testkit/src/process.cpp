// testkit::child: a server program started as a child process.
#include <loupe/testkit/process.hpp>

#include <condition_variable>
#include <csignal>
#include <cstring>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace loupe::testkit {

struct child::impl {
  pid_t pid = -1;
  int out_fd = -1, err_fd = -1;
  mutable std::mutex m;
  std::condition_variable cv;
  std::string out, err;
  bool out_eof = false, err_eof = false;
  std::thread reader;
  bool exited = false;
  int status = 0;

  void read_loop() {
    pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    char buf[4096];
    for (;;) {
      {
        std::lock_guard lock(m);
        if (out_eof && err_eof) break;
      }
      if (::poll(fds, 2, 100) < 0 && errno != EINTR) break;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        std::lock_guard lock(m);
        if (n <= 0) {
          (i == 0 ? out_eof : err_eof) = true;
          fds[i].fd = -1;
        } else {
          (i == 0 ? out : err).append(buf, static_cast<std::size_t>(n));
        }
        cv.notify_all();
      }
    }
  }
};

child::child(std::vector<std::string> argv) : impl_(std::make_unique<impl>()) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const int rc = ::posix_spawn(&impl_->pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  impl_->out_fd = out_pipe[0];
  impl_->err_fd = err_pipe[0];
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  impl_->reader = std::thread([this] { impl_->read_loop(); });
}

child::~child() {
  if (!impl_->exited && impl_->pid > 0) {
    ::kill(impl_->pid, SIGKILL);
    int st;
    ::waitpid(impl_->pid, &st, 0);
  }
  if (impl_->reader.joinable()) impl_->reader.join();
  ::close(impl_->out_fd);
  ::close(impl_->err_fd);
}

int child::pid() const noexcept { return impl_->pid; }

unsigned short child::wait_for_port(std::chrono::milliseconds deadline) {
  static const std::regex running(R"(Running on https?://[^\s]+:(\d+))");
  std::unique_lock lock(impl_->m);
  std::smatch m;
  const bool ok = impl_->cv.wait_for(lock, deadline, [&] {
    return std::regex_search(impl_->out, m, running) || (impl_->out_eof && impl_->err_eof);
  });
  if (!ok || m.empty())
    throw std::runtime_error("child did not print its address; stdout:\n" + impl_->out + "\nstderr:\n" + impl_->err);
  return static_cast<unsigned short>(std::stoi(m[1].str()));
}

void child::signal(int signo) {
  if (!impl_->exited) ::kill(impl_->pid, signo);
}

bool child::exited_within(std::chrono::milliseconds deadline) {
  if (impl_->exited) return true;
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    int st = 0;
    const pid_t r = ::waitpid(impl_->pid, &st, WNOHANG);
    if (r == impl_->pid) {
      impl_->exited = true;
      impl_->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return true;
    }
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int child::wait_exit(std::chrono::milliseconds deadline) {
  if (!exited_within(deadline))
    throw std::runtime_error("child " + std::to_string(impl_->pid) + " did not exit in time; stderr:\n" + stderr_text());
  // Let the reader collect the last output.
  std::unique_lock lock(impl_->m);
  impl_->cv.wait_for(lock, std::chrono::seconds(2), [&] { return impl_->out_eof && impl_->err_eof; });
  return impl_->status;
}

bool child::wait_for_stderr(std::string_view needle, std::chrono::milliseconds deadline) {
  std::unique_lock lock(impl_->m);
  return impl_->cv.wait_for(lock, deadline, [&] {
    return impl_->err.find(needle) != std::string::npos || (impl_->out_eof && impl_->err_eof);
  }) && impl_->err.find(needle) != std::string::npos;
}

bool child::wait_for_stdout(std::string_view needle, std::chrono::milliseconds deadline) {
  std::unique_lock lock(impl_->m);
  return impl_->cv.wait_for(lock, deadline, [&] {
    return impl_->out.find(needle) != std::string::npos || (impl_->out_eof && impl_->err_eof);
  }) && impl_->out.find(needle) != std::string::npos;
}

std::string child::stdout_text() const {
  std::lock_guard lock(impl_->m);
  return impl_->out;
}

std::string child::stderr_text() const {
  std::lock_guard lock(impl_->m);
  return impl_->err;
}

}  // namespace loupe::testkit
