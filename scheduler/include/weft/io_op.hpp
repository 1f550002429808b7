// weft/io_op.hpp - the reactor's awaitable operation, and io::nop().
//
// An IoOp prepares one SQE on the ring of the worker that runs the task *now*
// and suspends; the CQE for it, reaped by that worker, completes the op and
// wakes the task. The SQE is not submitted on its own: every SQE a loop tick
// produces goes to the kernel in one io_uring_enter at the end of the tick,
// and CQEs are reaped in batches (DESIGN.md §4).
//
// The op's state lives in the awaiting coroutine's frame, and a frame with an
// operation in flight is never resumed or destroyed before its CQE arrives.
// Cancelling the task sends IORING_OP_ASYNC_CANCEL through the owning ring
// (through that loop's inbox when the cancel is handled on another worker),
// then waits for the CQE. If the operation completed anyway its result is
// delivered and the cancellation is raised at the next suspension point.
//
// The I/O component builds files and sockets on this type: an op is a Prep
// functor that fills the SQE plus the interpretation of the CQE's result.
//
// # Timeouts
// An op may carry a relative timeout (set_timeout before awaiting). It goes
// to the kernel as an IORING_OP_LINK_TIMEOUT linked to the op's SQE
// (IOSQE_IO_LINK): when it fires first the kernel cancels the op, whose CQE
// then reports -ECANCELED although nobody asked for a cancel; that is how a
// timeout is told apart from a cancellation (timed_out is set). The two SQEs
// must reach the kernel in the same io_uring_enter, or the op would run
// without its timeout: io_begin reserves room for both before taking the
// first (submitting first when the SQ is short). The link timeout's own CQE
// carries kIgnoreToken and is dropped by the reaper. A result that completed
// although the timeout (or a cancel) raced with it is delivered as usual.
// The no-timeout path costs one predictable branch more than before.
//
// Threads: await only inside a weft task (RuntimeError otherwise).
#pragma once

#include <liburing.h>

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <system_error>
#include <utility>
#include <weft/detail/task_header.hpp>
#include <weft/errors.hpp>

namespace weft::detail {

/// What a CQE's user_data points at.
struct IoCompletion {
  void (*complete)(IoCompletion*, int res, unsigned flags) noexcept = nullptr;
};

struct IoOpState : IoCompletion, Suspension, InboxItem {
  TaskHeader* task = nullptr;
  void* owner = nullptr;  // the Worker whose ring carries the SQE
  int res = 0;
  unsigned cqe_flags = 0;
  std::uint8_t phase = 0;     // owner thread only, see reactor.cpp
  bool cancelled = false;     // completed by a cancel (-ECANCELED after our request)
  bool cancel_taken = false;  // a pending cancel was consumed before submitting
  bool has_timeout = false;   // a linked timeout goes with the SQE
  bool timed_out = false;     // ended (-ECANCELED) by its linked timeout
  // A file operation: submitted when the task's step ends, not with the
  // tick, while earlier ones are out (RuntimeOptions::eager_file_submit;
  // Worker::op_started).
  bool file_op = false;
  __kernel_timespec timeout{};  // relative; the kernel reads it at submission
};

/// The state of an op that posts two CQEs, a result and then a notification
/// (IORING_OP_SEND_ZC: the notification, flagged IORING_CQE_F_NOTIF, says the
/// kernel no longer reads the buffer). The op completes, and its task
/// resumes, only when both have arrived: the result CQE flagged
/// IORING_CQE_F_MORE promises the notification, one without it ends the op
/// alone. Until then the frame, and the buffer it refers to, stay put (the
/// rule of DESIGN.md §4 extended to the buffer's release). A cancel or a
/// timeout ends the request but not the wait for the notification.
struct NotifOpState : IoOpState {
  int first_res = 0;
  unsigned first_flags = 0;
  bool have_result = false;
  bool have_notif = false;
  int notif_res = 0;  // the notification's res (IORING_NOTIF_USAGE_ZC_COPIED, ...)
};

/// Makes `op` wait for a notification CQE as described above. Call between
/// io_begin (which it follows) and io_commit. Owner thread only.
void io_expect_notification(NotifOpState* op) noexcept;

/// Gives `op` a linked timeout of `ns` nanoseconds (>= 0). Call before the
/// op is awaited. Owner thread only (the op is not shared yet).
inline void set_timeout(IoOpState* op, std::int64_t ns) noexcept {
  op->has_timeout = true;
  op->timeout.tv_sec = ns / 1000000000;
  op->timeout.tv_nsec = ns % 1000000000;
}

/// Takes an SQE on the current worker's ring for `op` (submitting first if
/// the queue is full). Returns null, without suspending, when a pending cancel
/// request was consumed instead (op->cancel_taken is then set). Throws
/// RuntimeError outside a task. Defined in reactor.cpp.
io_uring_sqe* io_begin(IoOpState* op);
/// Finishes the submission begun by io_begin: tags the SQE, links the
/// timeout SQE after it if the op has one, and suspends.
void io_commit(IoOpState* op, io_uring_sqe* sqe, std::coroutine_handle<> h) noexcept;

/// A request that stays on a ring with no task waiting on it: a multishot
/// operation whose CQEs its owner turns into a queue (weft::io's listeners
/// keep one multishot accept armed this way). Every CQE, including the final
/// one (no IORING_CQE_F_MORE), goes to `complete` on the ring owner's thread.
///
/// While armed it keeps its worker polling the ring every tick, like an op in
/// flight, but it does not keep a stopping runtime alive: a worker that stops
/// cancels its armed requests and reaps their final CQEs before its ring is
/// closed (with `worker_stopping` set, so the owner can tell that cancel from
/// its own), so an owner always sees the final CQE while its worker lives.
struct IoDetached : IoCompletion, InboxItem {
  void* owner = nullptr;             // the Worker whose ring holds it
  IoDetached* armed_prev = nullptr;  // the owner's list of armed requests
  IoDetached* armed_next = nullptr;
  bool worker_stopping = false;  // the owner's worker cancelled it on its way out
};

/// Takes an SQE on the current worker's ring for `d` (its user_data set to
/// d) and counts `d` armed there until io_detached_end. Null when the worker
/// is stopping (its ring takes no new long-lived request). Throws
/// RuntimeError outside a worker thread, std::system_error(EBUSY) if no SQE
/// can be had. The caller fills the SQE (keeping user_data).
io_uring_sqe* io_detached_begin(IoDetached* d);
/// At `d`'s final CQE (inside its `complete`, on the owner's thread): `d` is
/// no longer armed.
void io_detached_end(IoDetached* d) noexcept;
/// True on the thread of the worker that holds `d`.
bool io_detached_on_owner(const IoDetached* d) noexcept;
/// Owner thread: queues an IORING_OP_ASYNC_CANCEL for `d` with the tick's
/// SQEs. Its final CQE follows (-ECANCELED, or a result that raced it).
void io_detached_cancel(IoDetached* d) noexcept;
/// Any thread: runs `d->run` (set by the caller) on the owner's thread, from
/// its inbox. `d` must stay alive until then; a stopping worker drains its
/// inbox after its armed requests' final CQEs.
void io_detached_post(IoDetached* d) noexcept;

/// Owner-thread deferral for I/O helpers that batch a step's work into one
/// request (StreamWriter: the writes of one step go out in one send). If a
/// task's step is running on this thread, queues `item` so that
/// item->run(item) runs on this thread when the step ends, before the SQEs
/// the step queued are submitted, and returns true; `item` must stay alive
/// until then. Returns false, queuing nothing, when no step is running (a
/// loop callback, a CQE handler): the caller does the work itself. Throws
/// RuntimeError off a worker thread.
bool io_after_step(InboxItem* item);

/// The generic awaitable: `Prep` fills the SQE (called with io_uring_sqe*).
template <class Prep>
class IoOp {
 public:
  /// `timeout_ns` >= 0 gives the op a linked timeout (see above).
  explicit IoOp(Prep prep, std::int64_t timeout_ns = -1) : prep_(std::move(prep)) {
    if (timeout_ns >= 0) set_timeout(&st_, timeout_ns);
  }
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = io_begin(&st_);
    if (sqe == nullptr) return false;
    prep_(sqe);
    io_commit(&st_, sqe, h);
    return true;
  }
  /// The CQE's result (>= 0). Throws CancelledError if the op was cancelled
  /// (or never submitted because of a pending cancel), TimeoutError if its
  /// linked timeout ended it, std::system_error for a negative result.
  int await_resume() {
    if (st_.cancel_taken || st_.cancelled) throw_cancelled(current_header());
    if (st_.timed_out) throw TimeoutError("io_uring op timed out");
    if (st_.res < 0) throw std::system_error(-st_.res, std::system_category(), "io_uring op");
    return st_.res;
  }
  unsigned cqe_flags() const noexcept { return st_.cqe_flags; }

 private:
  Prep prep_;
  IoOpState st_;
};

struct NopPrep {
  void operator()(io_uring_sqe* sqe) const noexcept { io_uring_prep_nop(sqe); }
};

}  // namespace weft::detail

namespace weft::io {

/// An IORING_OP_NOP through the full operation path (prepare, submit with the
/// tick, reap, wake). Resolves to 0. Throws CancelledError if cancelled.
// Fully qualified: weft::io has a detail namespace of its own.
inline ::weft::detail::IoOp<::weft::detail::NopPrep> nop() {
  return ::weft::detail::IoOp<::weft::detail::NopPrep>(::weft::detail::NopPrep{});
}

}  // namespace weft::io
