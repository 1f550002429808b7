// process.cpp - create_subprocess_exec, Process, the pipes and the orphan
// reaper (see weft/io/process.hpp for the contract).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>
#include <system_error>
#include <thread>
#include <weft/errors.hpp>
#include <weft/io/detail/preps.hpp>
#include <weft/io/op.hpp>
#include <weft/io/process.hpp>
#include <weft/task_group.hpp>

#include "sigpipe.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3  // <linux/wait.h>; glibc's <sys/wait.h> has it from 2.36 only
#endif

extern char** environ;

namespace weft::io {

namespace detail {

struct ProcessState {
  int pid = -1;
  int pidfd = -1;
  std::mutex reap_mu;  // one waitid at a time; waits are rare, a mutex is simplest
  std::atomic<bool> reaped{false};
  int rc = 0;  // written before `reaped` is set (release), read after (acquire)
  std::optional<PipeWriter> in;
  std::optional<PipeReader> out;
  std::optional<PipeReader> err;
};

}  // namespace detail

namespace {

using detail::ProcessState;

// Largest single read/write handed to the ring (an SQE's length is 32 bits).
constexpr std::size_t kMaxIo = std::size_t{1} << 30;
// Chunk of read_to_end: 64 KiB, the default pipe capacity on Linux, so one
// read usually empties a full pipe.
constexpr std::size_t kReadChunk = 64 * 1024;

// weft::io's own operations (weft/io/op.hpp), under the names the errors of
// the pipes and of wait() begin with: Op<Prep> takes its name from
// Prep::kName, so each use gets a prep type of its own.
struct PidfdPollPrep : detail::PollPrep {
  static constexpr const char* kName = "weft::io::Process::wait: poll(pidfd)";
};
struct PipeReadPrep : detail::ReadPrep {
  static constexpr const char* kName = "weft::io::PipeReader::read";
};
struct PipeReadToEndPrep : detail::ReadPrep {
  static constexpr const char* kName = "weft::io::PipeReader::read_to_end";
};
struct PipeWritePrep : detail::WritePrep {
  static constexpr const char* kName = "weft::io::PipeWriter::write_all";
};

// Reaps the child if it has exited; true when returncode is known.
bool try_reap(ProcessState* st) {
  if (st->reaped.load(std::memory_order_acquire)) return true;
  std::lock_guard<std::mutex> lk(st->reap_mu);
  if (st->reaped.load(std::memory_order_acquire)) return true;
  siginfo_t si{};
  for (;;) {
    int r = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(st->pidfd), &si,
                     WEXITED | WNOHANG);
    if (r == 0) break;
    if (errno == EINTR) continue;
    if (errno == ECHILD) {
      // Someone else reaped it (SIGCHLD ignored, a waitpid(-1) elsewhere):
      // asyncio reports such a child's returncode as 255.
      st->rc = 255;
      st->reaped.store(true, std::memory_order_release);
      return true;
    }
    throw std::system_error(errno, std::system_category(), "weft::io::Process: waitid");
  }
  if (si.si_pid == 0) return false;  // still running
  st->rc = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
  st->reaped.store(true, std::memory_order_release);
  return true;
}

Task<int> wait_state(ProcessState* st) {
  for (;;) {
    if (try_reap(st)) co_return st->rc;
    (void)co_await detail::Op<PidfdPollPrep>(PidfdPollPrep{{st->pidfd, POLLIN}});
  }
}

// ---- the orphan reaper ----------------------------------------------------
//
// One thread for the whole process, started when a Process is dropped while
// its child still runs, ending when it has no child left. It blocks in
// poll(2) on the pidfds it holds plus a non-blocking self-pipe, written when
// a new pidfd arrives while the thread runs. (Not the ring: the child may
// outlive every Runtime.) The state is leaked on purpose (never destroyed) so
// that it outlives static destructors while a child is still running at exit.
struct Reaper {
  std::mutex mu;
  std::vector<int> incoming;  // pidfds handed over, not yet taken by the thread
  bool running = false;
  int wake_r = -1, wake_w = -1;  // the self-pipe, open while the thread runs
};

Reaper& reaper() {
  static Reaper* r = new Reaper;
  return *r;
}

void reap_and_close(int pidfd) noexcept {
  siginfo_t si{};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &si,
                  WEXITED | WNOHANG) != 0 &&
         errno == EINTR) {
  }
  ::close(pidfd);
}

void reaper_main() noexcept {
  Reaper& R = reaper();
  std::vector<int> mine;
  std::vector<pollfd> fds;
  for (;;) {
    int wake_r;
    {
      std::lock_guard<std::mutex> lk(R.mu);
      mine.insert(mine.end(), R.incoming.begin(), R.incoming.end());
      R.incoming.clear();
      if (mine.empty()) {
        R.running = false;
        ::close(R.wake_r);
        ::close(R.wake_w);
        R.wake_r = R.wake_w = -1;
        return;
      }
      wake_r = R.wake_r;
    }
    fds.clear();
    fds.push_back({wake_r, POLLIN, 0});
    for (int fd : mine) fds.push_back({fd, POLLIN, 0});
    int n = ::poll(fds.data(), fds.size(), -1);
    if (n < 0) continue;  // EINTR
    if (fds[0].revents & POLLIN) {
      char buf[64];
      while (::read(wake_r, buf, sizeof buf) == static_cast<ssize_t>(sizeof buf)) {
      }
    }
    std::vector<int> still;
    for (std::size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents != 0) {
        reap_and_close(fds[i].fd);
      } else {
        still.push_back(fds[i].fd);
      }
    }
    mine.swap(still);
  }
}

void hand_to_reaper(int pidfd) noexcept {
  Reaper& R = reaper();
  std::lock_guard<std::mutex> lk(R.mu);
  try {
    R.incoming.push_back(pidfd);
  } catch (...) {
    reap_and_close(pidfd);  // no memory: at least reap it if it has exited
    return;
  }
  if (R.running) {
    char one = 1;
    ssize_t r = ::write(R.wake_w, &one, 1);  // a full pipe already means "wake up"
    (void)r;
    return;
  }
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return;  // retried at the next hand-over
  R.wake_r = p[0];
  R.wake_w = p[1];
  // The thread must not take signals meant for the program's handlers.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    std::thread(reaper_main).detach();
    R.running = true;
  } catch (...) {
    ::close(p[0]);
    ::close(p[1]);
    R.wake_r = R.wake_w = -1;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

// ---- SIGPIPE --------------------------------------------------------------

using detail::block_sigpipe_here;  // sigpipe.hpp

// ---- communicate ------------------------------------------------------------

Task<void> feed_stdin(PipeWriter* w, std::string_view input) {
  try {
    if (!input.empty()) co_await w->write_all(input);
  } catch (const std::system_error& e) {
    // The child exited or closed its stdin without reading everything: not
    // an error of communicate (asyncio ignores BrokenPipe/ConnectionReset).
    if (e.code().value() != EPIPE && e.code().value() != ECONNRESET) throw;
  }
  w->close();
}

Task<void> read_into(PipeReader* r, std::string* dst) { *dst = co_await r->read_to_end(); }

Task<std::pair<std::string, std::string>> communicate_state(ProcessState* st,
                                                            std::string_view input) {
  if (!input.empty() && !st->in)
    throw ValueError("weft::io::Process::communicate: input given but stdin is not a pipe");
  std::string out, err;
  auto body = [&](TaskGroup& tg) -> Task<void> {
    if (st->in) tg.spawn(feed_stdin(&*st->in, input));
    if (st->out) tg.spawn(read_into(&*st->out, &out));
    if (st->err) tg.spawn(read_into(&*st->err, &err));
    co_return;
  };
  co_await task_group(body);
  co_await wait_state(st);
  co_return std::pair<std::string, std::string>(std::move(out), std::move(err));
}

// ---- spawning -------------------------------------------------------------

void check_no_nul(const std::string& s, const char* what) {
  if (s.find('\0') != std::string::npos)
    throw ValueError(std::string("weft::io::create_subprocess_exec: ") + what +
                     " contains a NUL byte");
}

// Descriptors made for the child, closed on every path out.
struct ChildFds {
  int fd[3] = {-1, -1, -1};
  bool owned[3] = {false, false, false};
  int parent[3] = {-1, -1, -1};  // our ends of pipes
  ~ChildFds() {
    for (int i = 0; i < 3; ++i) {
      if (owned[i] && fd[i] >= 0) ::close(fd[i]);
      if (parent[i] >= 0) ::close(parent[i]);
    }
  }
};

struct SpawnAttrs {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  SpawnAttrs() {
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
  }
  ~SpawnAttrs() {
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
  }
};

[[noreturn]] void throw_errno(int e, const std::string& what) {
  throw std::system_error(e, std::system_category(), "weft::io::create_subprocess_exec: " + what);
}

}  // namespace

// ---- PipeReader / PipeWriter ------------------------------------------------

PipeReader& PipeReader::operator=(PipeReader&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

void PipeReader::close() noexcept {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

Task<std::string> PipeReader::read(std::size_t n) {
  if (fd_ < 0) throw RuntimeError("weft::io::PipeReader::read: the pipe is closed");
  std::string buf;
  if (n == 0) co_return buf;
  buf.resize(std::min(n, kMaxIo));
  std::size_t r = co_await detail::Op<PipeReadPrep>(
      PipeReadPrep{{fd_, MutableBuffer(buf.data(), buf.size()), detail::kCurrentPosition}});
  buf.resize(r);
  co_return buf;
}

Task<std::string> PipeReader::read_to_end() {
  if (fd_ < 0) throw RuntimeError("weft::io::PipeReader::read_to_end: the pipe is closed");
  std::string out;
  for (;;) {
    std::size_t old = out.size();
    out.resize(old + kReadChunk);
    std::size_t r = co_await detail::Op<PipeReadToEndPrep>(PipeReadToEndPrep{
        {fd_, MutableBuffer(out.data() + old, kReadChunk), detail::kCurrentPosition}});
    out.resize(old + r);
    if (r == 0) co_return out;
  }
}

PipeWriter& PipeWriter::operator=(PipeWriter&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

void PipeWriter::close() noexcept {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

Task<void> PipeWriter::write_all(std::string_view data) {
  if (fd_ < 0) throw RuntimeError("weft::io::PipeWriter::write_all: the pipe is closed");
  while (!data.empty()) {
    // On the thread whose ring will carry the write (the task may have moved
    // since the last one): a broken pipe must give EPIPE, not kill us.
    block_sigpipe_here();
    const std::size_t len = std::min(data.size(), kMaxIo);
    std::size_t r = co_await detail::Op<PipeWritePrep>(
        PipeWritePrep{{fd_, ConstBuffer(data.data(), len), detail::kCurrentPosition}});
    data.remove_prefix(r);
  }
}

// ---- Process ------------------------------------------------------------------

Process::Process() noexcept = default;
Process::Process(std::unique_ptr<detail::ProcessState> st) noexcept : st_(std::move(st)) {}
Process::Process(Process&&) noexcept = default;

Process& Process::operator=(Process&& o) noexcept {
  if (this != &o) {
    Process old(std::move(*this));  // disposes of our child as the destructor does
    st_ = std::move(o.st_);
  }
  return *this;
}

Process::~Process() {
  if (!st_) return;
  st_->in.reset();
  st_->out.reset();
  st_->err.reset();
  bool done = false;
  try {
    done = try_reap(st_.get());
  } catch (...) {
  }
  if (done) {
    ::close(st_->pidfd);
  } else {
    hand_to_reaper(st_->pidfd);
  }
}

int Process::pid() const noexcept { return st_ ? st_->pid : -1; }

std::optional<int> Process::returncode() const noexcept {
  if (!st_ || !st_->reaped.load(std::memory_order_acquire)) return std::nullopt;
  return st_->rc;
}

Task<int> Process::wait() {
  if (!st_) throw RuntimeError("weft::io::Process::wait: empty Process");
  return wait_state(st_.get());
}

void Process::send_signal(int sig) {
  if (!st_) throw RuntimeError("weft::io::Process::send_signal: empty Process");
  if (sig < 0 || sig > SIGRTMAX)
    throw ValueError("weft::io::Process::send_signal: invalid signal number " +
                     std::to_string(sig));
  if (st_->reaped.load(std::memory_order_acquire)) return;
  if (::syscall(SYS_pidfd_send_signal, st_->pidfd, sig, nullptr, 0) != 0 && errno != ESRCH)
    throw std::system_error(errno, std::system_category(),
                            "weft::io::Process::send_signal: pidfd_send_signal");
}

void Process::terminate() { send_signal(SIGTERM); }
void Process::kill() { send_signal(SIGKILL); }

StreamWriter Process::take_stdin() {
  if (!st_ || !st_->in || st_->in->fd() < 0)
    throw weft::RuntimeError("Process::take_stdin: stdin is not a pipe, or was taken already");
  int fd = st_->in->release();
  st_->in.reset();
  return open_writer(fd);
}

namespace {
StreamReader take_reader(std::optional<PipeReader>& p, std::ptrdiff_t limit, const char* what) {
  if (limit <= 0) throw weft::ValueError(std::string(what) + ": limit must be > 0");
  if (!p || p->fd() < 0)
    throw weft::RuntimeError(std::string(what) + ": not a pipe, or taken already");
  int fd = p->release();
  p.reset();
  return open_reader(fd, limit);
}
}  // namespace

StreamReader Process::take_stdout(std::ptrdiff_t limit) {
  if (!st_) throw weft::RuntimeError("Process::take_stdout: empty Process");
  return take_reader(st_->out, limit, "Process::take_stdout");
}

StreamReader Process::take_stderr(std::ptrdiff_t limit) {
  if (!st_) throw weft::RuntimeError("Process::take_stderr: empty Process");
  return take_reader(st_->err, limit, "Process::take_stderr");
}

PipeWriter* Process::stdin_pipe() noexcept { return st_ && st_->in ? &*st_->in : nullptr; }
PipeReader* Process::stdout_pipe() noexcept { return st_ && st_->out ? &*st_->out : nullptr; }
PipeReader* Process::stderr_pipe() noexcept { return st_ && st_->err ? &*st_->err : nullptr; }

Task<std::pair<std::string, std::string>> Process::communicate(std::string_view input) {
  if (!st_) throw RuntimeError("weft::io::Process::communicate: empty Process");
  return communicate_state(st_.get(), input);
}

Process create_subprocess_exec(const std::string& program, const std::vector<std::string>& args,
                               const ProcessOptions& options) {
  if (program.empty()) throw ValueError("weft::io::create_subprocess_exec: empty program name");
  check_no_nul(program, "the program name");
  for (std::size_t i = 0; i < args.size(); ++i)
    check_no_nul(args[i], ("argument " + std::to_string(i + 1)).c_str());
  check_no_nul(options.cwd, "cwd");
  if (options.env)
    for (const auto& e : *options.env) check_no_nul(e, "an env entry");
  const Stdio* specs[3] = {&options.in, &options.out, &options.err};
  static const char* const kNames[3] = {"stdin", "stdout", "stderr"};
  for (int i = 0; i < 3; ++i) {
    if (specs[i]->kind == Stdio::Kind::Stdout && i != 2)
      throw ValueError(std::string("weft::io::create_subprocess_exec: Stdio::to_stdout() is for "
                                   "stderr only, not ") +
                       kNames[i]);
    if (specs[i]->kind == Stdio::Kind::Fd && specs[i]->fd < 0)
      throw ValueError(std::string("weft::io::create_subprocess_exec: Stdio::from_fd(") +
                       std::to_string(specs[i]->fd) + ") for " + kNames[i] +
                       ": negative descriptor");
  }

  ChildFds fds;
  for (int i = 0; i < 3; ++i) {
    switch (specs[i]->kind) {
      case Stdio::Kind::Pipe: {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
        fds.fd[i] = i == 0 ? p[0] : p[1];
        fds.parent[i] = i == 0 ? p[1] : p[0];
        fds.owned[i] = true;
        break;
      }
      case Stdio::Kind::DevNull:
        fds.fd[i] = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fds.fd[i] < 0) throw_errno(errno, "open /dev/null");
        fds.owned[i] = true;
        break;
      case Stdio::Kind::Fd:
        fds.fd[i] = specs[i]->fd;
        break;
      case Stdio::Kind::Inherit:
      case Stdio::Kind::Stdout:
        break;
    }
  }

  SpawnAttrs sa;
  if (!options.cwd.empty())
    if (int e = posix_spawn_file_actions_addchdir_np(&sa.fa, options.cwd.c_str()))
      throw_errno(e, "cwd " + options.cwd);
  for (int i = 0; i < 3; ++i) {
    int e = 0;
    if (fds.fd[i] >= 0) e = posix_spawn_file_actions_adddup2(&sa.fa, fds.fd[i], i);
    if (specs[i]->kind == Stdio::Kind::Stdout) e = posix_spawn_file_actions_adddup2(&sa.fa, 1, 2);
    if (e != 0) throw_errno(e, std::string("redirecting ") + kNames[i]);
  }
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGXFSZ);
  posix_spawnattr_setsigmask(&sa.attr, &empty);
  posix_spawnattr_setsigdefault(&sa.attr, &defaults);
  posix_spawnattr_setflags(&sa.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  argv.reserve(args.size() + 2);
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envv;
  char** envp = environ;
  if (options.env) {
    envv.reserve(options.env->size() + 1);
    for (const auto& e : *options.env) envv.push_back(const_cast<char*>(e.c_str()));
    envv.push_back(nullptr);
    envp = envv.data();
  }

  auto st = std::make_unique<ProcessState>();
  pid_t pid = -1;
  if (int e = ::posix_spawnp(&pid, program.c_str(), &sa.fa, &sa.attr, argv.data(), envp))
    throw_errno(e, "cannot run '" + program + "'");
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    int e = errno;
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    throw_errno(e, "pidfd_open for '" + program + "'");
  }

  st->pid = pid;
  st->pidfd = pidfd;
  if (fds.parent[0] >= 0) st->in.emplace(std::exchange(fds.parent[0], -1));
  if (fds.parent[1] >= 0) st->out.emplace(std::exchange(fds.parent[1], -1));
  if (fds.parent[2] >= 0) st->err.emplace(std::exchange(fds.parent[2], -1));
  return Process(std::move(st));  // ~ChildFds closes the child's ends
}

}  // namespace weft::io
