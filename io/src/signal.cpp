// signal.cpp - add_signal_handler / remove_signal_handler (see
// weft/io/signal.hpp for the contract and the signal-mask rules).
//
// State: one process-wide table, signal number -> Registration, under one
// mutex. Registering and removing are rare, so a plain std::mutex is the
// simplest correct choice; the signal path itself takes the mutex once per
// batch of signals read, never inside a signal handler.
//
// The reader task owns its signalfd and closes it when it ends. Its end
// (cancelled by remove_signal_handler or by runtime shutdown) runs
// ReaderExit, which unregisters the signal if the registration is still its
// own; remove_signal_handler erases the registration first, so whichever
// runs first restores the previous disposition, exactly once. The signalfd
// stays open while the registration is in the table (the reader checks the
// table under the mutex before closing), so remove_signal_handler may drain
// it under the same mutex.
#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <weft/errors.hpp>
#include <weft/io/detail/preps.hpp>
#include <weft/io/op.hpp>
#include <weft/io/signal.hpp>
#include <weft/join_handle.hpp>
#include <weft/loop.hpp>
#include <weft/runtime.hpp>

namespace weft::io {

namespace {

struct Registration {
  std::uint64_t id = 0;
  int fd = -1;  // the signalfd; the reader task closes it
  std::shared_ptr<std::function<void()>> callback;
  Loop* loop = nullptr;        // where the callback runs
  Runtime* runtime = nullptr;  // whose workers block the signal
  struct sigaction old_action {};
  TaskRef reader;
};

std::mutex g_mu;
std::map<int, Registration> g_regs;
std::uint64_t g_next_id = 1;

// The forwarding handler for threads that have the signal unblocked (see
// signal.hpp). Async-signal-safe: sigaddset, pthread_sigmask, kill, getpid.
// Adding the signal to the saved context's mask keeps it blocked in this
// thread after the handler returns (sigreturn restores that mask); the
// pthread_sigmask call does the same where the handler runs outside a real
// signal frame (ThreadSanitizer delivers signals late, from its own frame,
// with a copy of the context).
void forward_handler(int signo, siginfo_t*, void* uctx) {
  int saved_errno = errno;
  if (uctx != nullptr) sigaddset(&static_cast<ucontext_t*>(uctx)->uc_sigmask, signo);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  pthread_sigmask(SIG_BLOCK, &one, nullptr);
  kill(getpid(), signo);  // to the process again: a thread blocking it leaves it to the signalfd
  errno = saved_errno;
}

void thread_mask(int how, int signo) noexcept {
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  pthread_sigmask(how, &one, nullptr);
}

// Blocks or unblocks `signo` in every worker of `rt`: at once on the calling
// worker, through call_soon_threadsafe on the others.
void mask_on_workers(Runtime& rt, int signo, int how) noexcept {
  Loop* here = Loop::current();
  for (unsigned i = 0; i < rt.workers(); ++i) {
    Loop& l = rt.loop(i);
    if (&l == here) {
      thread_mask(how, signo);
      continue;
    }
    try {
      l.call_soon_threadsafe([signo, how] { thread_mask(how, signo); });
    } catch (...) {
      // The runtime is shutting down: its threads are about to end anyway.
    }
  }
}

// Reads every signal pending on `fd` (non-blocking); returns how many.
std::size_t drain(int fd) {
  std::size_t count = 0;
  signalfd_siginfo buf[8];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return count;
      throw std::system_error(errno, std::system_category(), "weft::io signal: read(signalfd)");
    }
    count += static_cast<std::size_t>(n) / sizeof(signalfd_siginfo);
  }
}

// Called with g_mu held, after erasing the registration from the table.
// `unmask_workers` is false when the reader ended on its own (runtime
// shutdown): the workers are about to exit, and a callback posted to a loop
// that stops before running it would only be leaked.
void undo_locked(int signo, Registration& r, bool unmask_workers) noexcept {
  sigaction(signo, &r.old_action, nullptr);
  try {
    drain(r.fd);  // signals that arrived while handled are not re-delivered
  } catch (...) {
  }
  if (unmask_workers && r.runtime != nullptr) mask_on_workers(*r.runtime, signo, SIG_UNBLOCK);
}

// Closes the signalfd when the reader's frame is destroyed. Passed by value,
// so it runs even when the reader is cancelled before its first step (the
// body then never runs, but the frame and its parameters are destroyed).
struct FdCloser {
  int fd = -1;
  explicit FdCloser(int f) noexcept : fd(f) {}
  FdCloser(FdCloser&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  FdCloser& operator=(FdCloser&&) = delete;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// Fires when the reader task completes, however it ends (cancelled by
// runtime shutdown, cancelled before its first step, failed): unregisters the
// signal if the registration is still this reader's. Runs on the completing
// thread while the task still holds its own reference, so dropping the
// registration's TaskRef here cannot destroy the frame under the completer.
struct ReaderExitNode : weft::detail::WaitNode {
  int signo = 0;
  std::uint64_t id = 0;
  static void on_fire(weft::detail::WaitNode* n, weft::detail::TaskHeader*) noexcept {
    auto* self = static_cast<ReaderExitNode*>(n);
    {
      std::lock_guard<std::mutex> lk(g_mu);
      auto it = g_regs.find(self->signo);
      if (it != g_regs.end() && it->second.id == self->id) {
        Registration r = std::move(it->second);
        g_regs.erase(it);
        undo_locked(self->signo, r, /*unmask_workers=*/false);
      }
    }
    delete self;
  }
};

void dispatch(int signo, std::uint64_t id, std::size_t count) {
  std::shared_ptr<std::function<void()>> cb;
  Loop* loop = nullptr;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    auto it = g_regs.find(signo);
    if (it == g_regs.end() || it->second.id != id) return;
    cb = it->second.callback;
    loop = it->second.loop;
  }
  for (std::size_t i = 0; i < count; ++i) {
    try {
      loop->call_soon_threadsafe([cb] { (*cb)(); });
    } catch (const RuntimeError&) {
      return;  // the runtime is shutting down
    }
  }
}

// weft::io's poll (weft/io/op.hpp) under the name its errors begin with.
struct SignalfdPollPrep : detail::PollPrep {
  static constexpr const char* kName = "weft::io signal: poll(signalfd)";
};

Task<void> signal_reader(int signo, std::uint64_t id, FdCloser owned) {
  const int fd = owned.fd;
  for (;;) {
    (void)co_await detail::Op<SignalfdPollPrep>(SignalfdPollPrep{{fd, POLLIN}});
    std::size_t n = drain(fd);
    if (n != 0) dispatch(signo, id, n);
  }
}

void check_signo(int signo, const char* fn) {
  if (signo < 1 || signo > SIGRTMAX)
    throw ValueError(std::string("weft::io::") + fn + ": signal number " + std::to_string(signo) +
                     " out of range(1, " + std::to_string(SIGRTMAX + 1) + ")");
}

}  // namespace

void add_signal_handler(int signo, std::function<void()> callback) {
  check_signo(signo, "add_signal_handler");
  if (signo == SIGKILL || signo == SIGSTOP)
    throw RuntimeError("weft::io::add_signal_handler: signal " + std::to_string(signo) +
                       " cannot be caught");
  if (signo == SIGSEGV || signo == SIGBUS || signo == SIGFPE || signo == SIGILL ||
      signo == SIGTRAP || signo == SIGSYS)
    throw RuntimeError("weft::io::add_signal_handler: signal " + std::to_string(signo) +
                       " is a fault signal, raised synchronously in the faulting thread; it "
                       "cannot be handled on a loop");
  if (signo > SIGSYS && signo < SIGRTMIN)
    throw ValueError("weft::io::add_signal_handler: signal " + std::to_string(signo) +
                     " is reserved by the C library");
  if (!callback) throw ValueError("weft::io::add_signal_handler: empty callback");
  Loop* loop = Loop::current();
  if (loop == nullptr)
    throw RuntimeError("weft::io::add_signal_handler: no running event loop (call it on a worker)");
  Runtime* rt = &loop->runtime();
  auto cb = std::make_shared<std::function<void()>>(std::move(callback));

  std::unique_lock<std::mutex> lk(g_mu);
  auto it = g_regs.find(signo);
  if (it != g_regs.end()) {
    if (it->second.runtime != rt)
      throw RuntimeError("weft::io::add_signal_handler: signal " + std::to_string(signo) +
                         " is already handled by another Runtime");
    it->second.callback = std::move(cb);
    it->second.loop = loop;
    return;
  }

  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  int fd = ::signalfd(-1, &one, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0)
    throw std::system_error(errno, std::system_category(),
                            "weft::io::add_signal_handler: signalfd");

  auto exit_node = std::make_unique<ReaderExitNode>();
  exit_node->fire = ReaderExitNode::on_fire;
  exit_node->signo = signo;
  Registration r;
  r.id = g_next_id++;
  r.fd = fd;
  r.callback = std::move(cb);
  r.loop = loop;
  r.runtime = rt;
  struct sigaction sa {};
  sa.sa_sigaction = forward_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  thread_mask(SIG_BLOCK, signo);
  if (sigaction(signo, &sa, &r.old_action) != 0) {
    int e = errno;
    ::close(fd);
    thread_mask(SIG_UNBLOCK, signo);
    throw std::system_error(
        e, std::system_category(),
        "weft::io::add_signal_handler: sigaction(" + std::to_string(signo) + ")");
  }
  try {
    Task<void> t = signal_reader(signo, r.id, FdCloser(fd));  // owns fd from here on
    r.reader = spawn(std::move(t), SpawnOptions{"weft signal reader"});
  } catch (...) {
    // The reader's frame is gone with the Task (closing fd); the registration
    // was not in the table yet, so undo the rest here.
    sigaction(signo, &r.old_action, nullptr);
    thread_mask(SIG_UNBLOCK, signo);
    throw;
  }
  exit_node->id = r.id;
  TaskRef reader = r.reader;  // keeps the header alive past the unlock
  g_regs.emplace(signo, std::move(r));
  mask_on_workers(*rt, signo, SIG_BLOCK);
  lk.unlock();
  // A shutdown's cancel may already have ended the reader (even before its
  // first step): add_waiter then refuses the node and it fires here.
  ReaderExitNode* node = exit_node.release();
  if (!weft::detail::add_waiter(reader.header(), node)) node->fire(node, reader.header());
}

bool remove_signal_handler(int signo) {
  check_signo(signo, "remove_signal_handler");
  TaskRef reader;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    auto it = g_regs.find(signo);
    if (it == g_regs.end()) return false;
    Registration r = std::move(it->second);
    g_regs.erase(it);
    undo_locked(signo, r, /*unmask_workers=*/true);
    reader = std::move(r.reader);
  }
  reader.cancel();  // its end closes the signalfd
  return true;
}

}  // namespace weft::io
