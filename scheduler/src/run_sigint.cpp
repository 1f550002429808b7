// run_sigint.cpp - run()'s Ctrl-C handling, as asyncio.Runner does it
// (ASYNCIO_SEMANTICS §R 119).
//
// asyncio.Runner installs its SIGINT handler only when SIGINT still has
// Python's default handler; the first Ctrl-C cancels the main task and wakes
// the loop, and run() raises KeyboardInterrupt if the main task ends
// cancelled; a second Ctrl-C raises KeyboardInterrupt at once. weft does the
// same with these C++ translations:
// - "default handler" is SIG_DFL (or weft's own handler left behind by an
//   earlier run(), which acts as SIG_DFL when no run() is active). A program
//   that installed its own SIGINT handler, or ignores SIGINT (nohup, a
//   background job), keeps it.
// - Signal dispositions are process-wide, so only one run() at a time owns
//   SIGINT; a concurrent run() on another thread waits without it.
// - The thread inside run() takes the signal: it blocks SIGINT before the
//   Runtime starts its workers, which inherit the mask, and unblocks it when
//   it starts waiting for the main task. So Ctrl-C never interrupts task
//   code or a worker's io_uring wait (threads of your own that leave SIGINT
//   unblocked may take it too; that works the same).
// - The handler only counts and posts a semaphore, both async-signal-safe;
//   the thread inside run() waits on that semaphore (sem_wait, which
//   ThreadSanitizer treats as a blocking call, so it runs the handler at
//   once rather than deferring it) and does the cancelling itself.
// - The second Ctrl-C cannot throw into whatever code runs, so it restores
//   SIG_DFL and sends SIGINT to the process again: the process ends as an
//   uncaught Ctrl-C ends it (Python's second KeyboardInterrupt usually ends
//   the program the same way).
// - The handler is removed as soon as the main task is done, before the
//   shutdown, as Runner.run restores it before Runner.close. A Ctrl-C during
//   shutdown gets the default action.
#include <semaphore.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <weft/runtime.hpp>

namespace weft::detail {

namespace {

struct Global {
  std::atomic<bool> owned{false};   // a run() holds SIGINT
  std::atomic<bool> active{false};  // the handler cancels (else it acts as SIG_DFL)
  std::atomic<unsigned> count{0};   // SIGINTs while active
  sem_t sem;                        // posted by the handler and by main's completion
  Global() { sem_init(&sem, 0, 0); }
};
Global g_sigint;

void default_action_again() noexcept {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGINT, &dfl, nullptr);
  kill(getpid(), SIGINT);  // pending until this handler returns, then the default action
}

void on_sigint(int) {
  int saved_errno = errno;
  if (g_sigint.active.load(std::memory_order_acquire)) {
    unsigned n = g_sigint.count.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (n == 1) {
      sem_post(&g_sigint.sem);
    } else {
      default_action_again();
    }
  } else {
    default_action_again();
  }
  errno = saved_errno;
}

struct DoneNode : WaitNode {
  std::atomic<std::uint32_t> done{0};
  static void on_fire(WaitNode* n, TaskHeader*) noexcept {
    static_cast<DoneNode*>(n)->done.store(1, std::memory_order_release);
    // The waiter may return as soon as it sees `done`; only the global
    // semaphore is touched after that.
    sem_post(&g_sigint.sem);
  }
};

struct PrivateDoneNode : WaitNode {
  sem_t sem;
  std::atomic<int> refs{2};
  PrivateDoneNode() { sem_init(&sem, 0, 0); }
  ~PrivateDoneNode() { sem_destroy(&sem); }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  static void on_fire(WaitNode* n, TaskHeader*) noexcept {
    auto* self = static_cast<PrivateDoneNode*>(n);
    sem_post(&self->sem);
    self->release();
  }
};

}  // namespace

struct RunSigintState {
  sigset_t mask;  // the calling thread's mask on entry
  bool owner = false;
  bool installed = false;
  struct sigaction old {};
};

RunSigintState* run_sigint_install() {
  auto* s = new RunSigintState;
  pthread_sigmask(SIG_SETMASK, nullptr, &s->mask);
  struct sigaction cur {};
  if (sigaction(SIGINT, nullptr, &cur) != 0) return s;
  const bool is_default =
      !(cur.sa_flags & SA_SIGINFO) && (cur.sa_handler == SIG_DFL || cur.sa_handler == on_sigint);
  if (!is_default) return s;
  if (g_sigint.owned.exchange(true, std::memory_order_acq_rel)) return s;  // another run() has it
  s->owner = true;
  while (sem_trywait(&g_sigint.sem) == 0) {
  }
  g_sigint.count.store(0, std::memory_order_relaxed);
  g_sigint.active.store(true, std::memory_order_release);
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGINT, &sa, &s->old) != 0) return s;
  s->installed = true;
  sigset_t sigint;
  sigemptyset(&sigint);
  sigaddset(&sigint, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigint, nullptr);  // until wait(): see the top
  // An earlier run()'s handler counts as the default it stands for.
  if (s->old.sa_handler == on_sigint) s->old.sa_handler = SIG_DFL;
  return s;
}

bool run_sigint_wait(RunSigintState* s, TaskHeader* main) {
  if (!s->installed) {
    // No Ctrl-C handling, but still wait in sem_wait rather than a raw futex:
    // ThreadSanitizer runs a signal handler at once only inside a call it
    // knows to block, and signals handled by io::add_signal_handler may land
    // on this thread. The node is shared with the completer (two references)
    // because sem_post may touch the semaphore after the waiter has woken.
    auto* n = new PrivateDoneNode;
    n->fire = PrivateDoneNode::on_fire;
    if (!add_waiter(main, n)) {
      delete n;
      return false;
    }
    while (sem_wait(&n->sem) != 0) {
    }
    n->release();
    return false;
  }
  DoneNode node;
  node.fire = DoneNode::on_fire;
  bool interrupted = false;
  if (!add_waiter(main, &node)) return false;
  if (!sigismember(&s->mask, SIGINT)) {
    sigset_t sigint;
    sigemptyset(&sigint);
    sigaddset(&sigint, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &sigint, nullptr);
  }
  for (;;) {
    while (sem_wait(&g_sigint.sem) != 0 && errno == EINTR) {
    }
    if (!interrupted && g_sigint.count.load(std::memory_order_acquire) > 0) {
      interrupted = true;
      const std::string msg;
      request_cancel(main, &msg);
    }
    if (node.done.load(std::memory_order_acquire)) break;
  }
  return interrupted;
}

void run_sigint_restore_handler(RunSigintState* s) noexcept {
  if (!s->installed) return;
  s->installed = false;
  g_sigint.active.store(false, std::memory_order_release);
  // Put the previous disposition back only if SIGINT is still ours: while
  // io::add_signal_handler(SIGINT) holds it, it gives ours back when it is
  // removed, and ours, inactive, then acts as SIG_DFL.
  struct sigaction cur {};
  if (sigaction(SIGINT, nullptr, &cur) == 0 && cur.sa_handler == on_sigint)
    sigaction(SIGINT, &s->old, nullptr);
}

void run_sigint_release(RunSigintState* s) noexcept {
  run_sigint_restore_handler(s);
  if (s->owner) g_sigint.owned.store(false, std::memory_order_release);
  pthread_sigmask(SIG_SETMASK, &s->mask, nullptr);
  delete s;
}

}  // namespace weft::detail
