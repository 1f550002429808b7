// weft/io/signal.hpp - asyncio's loop.add_signal_handler /
// remove_signal_handler, through a signalfd watched on the ring.
//
//   weft::io::add_signal_handler(SIGUSR1, [&] { event.set(); });
//   ...
//   weft::io::remove_signal_handler(SIGUSR1);  // true: it was registered
//
// # How a signal reaches the callback
// Each handled signal has a signalfd and a reader task on the runtime that
// registered it. The reader waits for the signalfd to become readable with an
// IORING_OP_POLL_ADD on its worker's ring, then drains it with non-blocking
// read(2) calls and posts the callback once per signal read to the loop
// add_signal_handler was called on (call_soon_threadsafe: the callback runs
// on that loop's thread, as an ordinary loop callback, never inside a signal
// handler, so it may do anything a callback may do). Signals of one number
// that arrive before the reader drains them coalesce, as POSIX standard
// signals always do.
//
// Why poll + read(2) rather than an IORING_OP_READ of the signalfd: a
// signalfd yields the signals pending for the thread that reads it, and an
// io_uring read may run in a kernel io-wq thread; polling keeps the dequeue on
// a worker thread, and lets remove_signal_handler drain what is left.
//
// # Signal masks: the rules
// A signalfd only sees a signal that no thread takes first, so a handled
// signal must be blocked in every thread that could receive it:
// - Runtime workers: add_signal_handler blocks the signal in the calling
//   worker at once and in the runtime's other workers through their loops
//   (call_soon_threadsafe), so shortly after it returns; remove_signal_handler
//   unblocks it there again.
// - Every other thread (the thread blocked in run(), the blocking pool's
//   threads, threads of your own): add_signal_handler also installs a small
//   async-signal-safe handler (sigaction). If the signal lands on a thread
//   that has it unblocked, that handler blocks it in that thread from then on
//   and sends it to the process again (kill(getpid(), signo)), where the
//   signalfd picks it up. So a foreign thread's mask changes the first time it
//   takes a handled signal, and weft does not change it back (run() restores
//   its own thread's mask when it returns). Block the signals you handle in
//   main() before you start threads to keep every mask as you set it.
// - Signals sent to one thread (pthread_kill, tgkill, raise) rather than to
//   the process reach the callback only if they land where the forwarding
//   handler runs or on a worker whose poll sees them; send with
//   kill(getpid(), signo) (or from outside) for a guaranteed delivery. The
//   re-sent signal carries no siginfo of the original sender.
//
// # Dispositions
// add_signal_handler saves the signal's previous sigaction;
// remove_signal_handler and the end of the reader task (runtime shutdown, in
// which every task is cancelled) restore it, after draining the signals still
// pending so they are not delivered to the restored disposition. When run()
// holds SIGINT for Ctrl-C (see weft/runtime.hpp), add_signal_handler(SIGINT)
// takes it over and remove_signal_handler(SIGINT) gives it back, as asyncio's
// Runner and add_signal_handler do.
//
// One handler per signal per process (signal dispositions are process-wide):
// adding a handler again for the same signal replaces the callback and the
// loop it runs on. A signal registered by one Runtime cannot be registered by
// another while the first registration is alive (RuntimeError).
//
// Threads: add_signal_handler must be called on a worker (inside a task or a
// loop callback), as asyncio needs a running loop. remove_signal_handler may
// be called from any thread.
#pragma once

#include <functional>

namespace weft::io {

/// asyncio's loop.add_signal_handler(signo, callback): callback() runs on the
/// calling worker's loop each time `signo` is received, until
/// remove_signal_handler(signo) or the runtime shuts down. Replaces an
/// earlier callback for the same signal.
/// Throws ValueError for a signal number out of range (1..SIGRTMAX) or one
/// the C library reserves, or an empty callback; RuntimeError for SIGKILL and
/// SIGSTOP ("cannot be caught"), for the fault signals SIGSEGV, SIGBUS,
/// SIGFPE, SIGILL, SIGTRAP and SIGSYS (they are raised synchronously by the
/// faulting thread and cannot wait for a loop), when called outside a worker,
/// or when another Runtime handles `signo`; std::system_error if signalfd or
/// sigaction fails.
void add_signal_handler(int signo, std::function<void()> callback);

/// asyncio's loop.remove_signal_handler(signo): returns true if a handler was
/// registered (and removes it, restoring the previous disposition), false if
/// none was. Signals received but not yet delivered to the callback are
/// dropped. Throws ValueError for a signal number out of range. Any thread.
bool remove_signal_handler(int signo);

}  // namespace weft::io
