// reactor.cpp - each worker's io_uring ring: set-up, the per-tick submit and
// reap, the blocking wait a worker parks in, wake-ups, and the operation
// protocol of weft/io_op.hpp.
//
// # One system call per tick
// Operations only prepare SQEs. At the end of a tick the worker calls
// io_uring_submit_and_get_events once, which submits everything the tick
// queued and (the ring uses DEFER_TASKRUN) runs the completions that are due;
// then all ready CQEs are reaped in batches with io_uring_peek_batch_cqe. A
// tick with nothing queued and nothing in flight makes no system call. The
// worker parks in io_uring_submit_and_wait_timeout with the next timer's
// deadline as the timeout, so a parked worker's only system call is the wait.
//
// # Wake-ups
// A worker wakes a parked worker with IORING_OP_MSG_RING on its own ring,
// submitted at once together with whatever SQEs the tick had queued so far
// (IOSQE_CQE_SKIP_SUCCESS spares the waker a CQE). Threads
// outside the runtime have no ring (liburing 2.3 lacks
// io_uring_register_sync_msg), so they write to an eventfd on which the ring
// keeps one read armed. The eventfd is blocking: a non-blocking one makes the
// armed read complete at once and the worker spin (PLATFORM.md).
//
// Measured with bench/micro/wake_latency.cpp (bench_wake_latency: a task on
// a busy worker spawns a child that only the other, parked worker can run;
// 2,000 wake-ups per run, 12 runs alternating the two mechanisms, this 2-core
// VM, 2026-11-25):
//   MSG_RING : median 20.1 us per wake-up (min 11.8, max 178)
//   eventfd  : median 26.9 us per wake-up (min 13.5, max 87.5)
// Both are dominated by the kernel waking a sleeping thread (PLATFORM.md:
// 20-30 us here). MSG_RING is the faster of the two, so it is the default for
// worker-to-worker wakes; the eventfd stays for threads outside the runtime.
// RuntimeOptions::wake_with_eventfd switches worker-to-worker wakes to the
// eventfd for comparison.
//
// # Operation state (IoOpState::phase), owner thread only
//   kInFlight      submitted, no CQE yet
//   kCancelSent    the owner submitted IORING_OP_ASYNC_CANCEL for it
//   kDelivered     the result was handed to the task
// Only the owner thread (the worker whose ring carries the op) reads or
// writes the phase, so a completion costs no atomic operation. A cancel is
// handled by whichever worker holds the task in kRunning (run_task); when
// that is not the owner, the hook hands the task, still held in kRunning,
// over to the owner through its inbox (Worker::hand_over_task), and the
// owner decides there between the two orders: the CQE came first (the
// result is delivered, the cancel re-armed) or the cancel goes out. While
// the task is held nobody resumes it, so the frame, and the inbox item in
// it, stay put until the owner has handled the item; a CQE that arrives
// meanwhile only marks the wait done (complete_wait on a running task).
//
// # Linked timeouts (weft/io_op.hpp)
// An op with a timeout takes two SQEs back to back: its own, flagged
// IOSQE_IO_LINK, and an IORING_OP_LINK_TIMEOUT tagged kIgnoreToken. io_begin
// first makes sure the SQ has room for both (Worker::reserve_sqes submits
// when it has not), so no submission can end between them: a link cut at
// the end of a submission would run the op with no timeout at all. An op
// that ends with -ECANCELED when no cancel was requested was ended by its
// timeout (timed_out). With a cancel requested, -ECANCELED is a
// cancellation even if the timer fired too: the task is being cancelled.
//
// # Detached requests (IoDetached, weft/io_op.hpp)
// A multishot request with no task behind it (a listener's multishot
// accept) is counted in detached_, not inflight_: it keeps the non-blocking
// poll entering the kernel each tick (its CQEs would otherwise wait for the
// next park; with DEFER_TASKRUN nothing completes without an enter), but it
// does not keep a stopping worker alive. On its way out a worker cancels the
// ones still armed and reaps until their final CQEs have arrived
// (drain_detached), so their owners always see the end of their requests
// and the ring closes with nothing of theirs in it; it arms nothing new
// after that (io_detached_begin returns null).
#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <weft/io_op.hpp>

#include "worker.hpp"

namespace weft::detail {

namespace {

enum Phase : std::uint8_t { kInFlight = 0, kCancelSent = 1, kDelivered = 2 };

std::string io_uring_failure_reason(int err) {
  std::string why = std::strerror(err);
  int disabled = 0;
  {
    std::ifstream f("/proc/sys/kernel/io_uring_disabled");
    if (f >> disabled && disabled != 0)
      return "io_uring is disabled by /proc/sys/kernel/io_uring_disabled = " +
             std::to_string(disabled) + " (" + why + ")";
  }
  if (err == EINVAL) {
    utsname u{};
    uname(&u);
    return std::string("the kernel (") + u.release +
           ") rejects IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN; weft needs Linux "
           "6.1 or later (" +
           why + ")";
  }
  if (err == ENOSYS || err == EPERM)
    return "io_uring_setup is refused (" + why +
           "): most likely a seccomp filter (for example a container runtime's default profile) "
           "blocks it";
  if (err == ENOMEM)
    return "io_uring_setup failed for lack of locked memory (" + why + "); raise RLIMIT_MEMLOCK";
  return "io_uring_setup failed: " + why;
}

}  // namespace

bool Worker::setup_ring(std::string* error) {
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int r = io_uring_queue_init_params(rt_.opts.ring_entries, &ring_, &p);
  if (r < 0) {
    *error =
        "weft: cannot start worker " + std::to_string(index_) + ": " + io_uring_failure_reason(-r);
    return false;
  }
  ring_ready_ = true;
  ring_fd_ = ring_.ring_fd;
  event_fd_ = ::eventfd(0, EFD_CLOEXEC);  // blocking on purpose, see above
  if (event_fd_ < 0) {
    *error = std::string("weft: eventfd failed: ") + std::strerror(errno);
    return false;
  }
  // Rings must not be shared with a forked child that keeps running.
  io_uring_ring_dontfork(&ring_);
  // The runtime's registered buffers, same table on every ring (see
  // weft/detail/fixed_buffers.hpp). From this thread: SINGLE_ISSUER rings
  // take register calls from their submitter task only.
  if (FixedBufferSet* fb = rt_.fixed_buffers) {
    r = io_uring_register_buffers(&ring_, fb->iovecs(), fb->count());
    if (r < 0) {
      *error = "weft: worker " + std::to_string(index_) + " cannot register " +
               std::to_string(fb->count()) + " fixed buffers of " +
               std::to_string(fb->buffer_size()) + " bytes: " + std::strerror(-r) +
               (r == -ENOMEM ? " (pinned memory counts against RLIMIT_MEMLOCK)" : "");
      return false;
    }
  }
  arm_eventfd();
  return true;
}

void Worker::teardown_ring() noexcept {
  if (ring_ready_) {
    io_uring_queue_exit(&ring_);
    ring_ready_ = false;
  }
  if (event_fd_ >= 0) {
    ::close(event_fd_);
    event_fd_ = -1;
  }
}

void Worker::arm_eventfd() noexcept {
  if (event_armed_) return;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    submit_now();
    sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) return;  // retried at the next poll
  }
  io_uring_prep_read(sqe, event_fd_, &event_buf_, sizeof event_buf_, 0);
  io_uring_sqe_set_data64(sqe, kEventfdToken);
  event_armed_ = true;
}

io_uring_sqe* Worker::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe != nullptr) return sqe;
  // The submission queue is full: hand it to the kernel now and retry.
  submit_now();
  sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) throw std::system_error(EBUSY, std::system_category(), "io_uring_get_sqe");
  return sqe;
}

void Worker::reserve_sqes(unsigned n) {
  if (io_uring_sq_space_left(&ring_) >= n) return;
  submit_now();
  if (io_uring_sq_space_left(&ring_) < n)
    throw std::system_error(EBUSY, std::system_category(), "io_uring_get_sqe");
}

io_uring_sqe* Worker::get_sqe_nothrow() noexcept {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe != nullptr) return sqe;
  submit_now();
  return io_uring_get_sqe(&ring_);
}

void Worker::send_wake_to(Worker& target) noexcept {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    submit_now();
    sqe = io_uring_get_sqe(&ring_);
  }
  bump(m_.wake_syscalls);
  if (sqe == nullptr) {
    std::uint64_t one = 1;
    ssize_t r = ::write(target.event_fd_, &one, sizeof one);
    (void)r;
    return;
  }
  io_uring_prep_msg_ring(sqe, target.ring_fd_, 0, kWakeToken, 0);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(sqe, kIgnoreToken);
  // The target sleeps until this reaches the kernel: submit now unless this
  // worker is about to submit anyway (it is in its maintenance step or
  // parking), which the next poll does.
  submit_now();
}

void Worker::reactor_poll(bool block, std::int64_t timeout_ns) noexcept {
  if (!event_armed_) arm_eventfd();
  unsigned pending = io_uring_sq_ready(&ring_);
  if (!block) {
    if (pending == 0 && inflight_ == 0 && detached_ == 0 && !io_uring_cq_has_overflow(&ring_))
      return;
    int r = io_uring_submit_and_get_events(&ring_);
    bump(m_.enter_calls);
    if (r > 0) bump(m_.sqes_submitted, static_cast<std::uint64_t>(r));
    file_sqes_queued_ = 0;
  } else {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{};
    __kernel_timespec* tsp = nullptr;
    if (timeout_ns >= 0) {
      ts.tv_sec = timeout_ns / 1000000000;
      ts.tv_nsec = timeout_ns % 1000000000;
      tsp = &ts;
    }
    int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, tsp, nullptr);
    bump(m_.enter_calls);
    if (r > 0) bump(m_.sqes_submitted, static_cast<std::uint64_t>(r));
    file_sqes_queued_ = 0;
  }
  reap();
}

void Worker::submit_now() noexcept {
  int r = io_uring_submit(&ring_);
  bump(m_.enter_calls);
  if (r > 0) bump(m_.sqes_submitted, static_cast<std::uint64_t>(r));
  file_sqes_queued_ = 0;
}

void Worker::reap() noexcept {
  io_uring_cqe* cqes[64];
  reaping_ = true;
  for (;;) {
    unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, 64);
    if (n == 0) break;
    bump(m_.cqes, n);
    for (unsigned i = 0; i < n; ++i) {
      std::uint64_t ud = cqes[i]->user_data;
      int res = cqes[i]->res;
      unsigned flags = cqes[i]->flags;
      if (ud == kIgnoreToken || ud == kWakeToken) continue;
      if (ud == kEventfdToken) {
        event_armed_ = false;
        continue;
      }
      auto* c = reinterpret_cast<IoCompletion*>(ud);
      c->complete(c, res, flags);
    }
    io_uring_cq_advance(&ring_, n);
    if (n < 64) break;
  }
  reaping_ = false;
  if (notify_after_reap_) {
    notify_after_reap_ = false;
    rt_.notify_parked(this, /*local=*/true);
  }
}

// ---------------------------------------------------------------------------
// Detached requests (weft/io_op.hpp: IoDetached)

bool Worker::detached_armed(IoDetached* d) noexcept {
  if (detached_closed_) return false;
  d->owner = this;
  d->worker_stopping = false;
  d->armed_prev = nullptr;
  d->armed_next = detached_head_;
  if (detached_head_) detached_head_->armed_prev = d;
  detached_head_ = d;
  ++detached_;
  return true;
}

void Worker::detached_ended(IoDetached* d) noexcept {
  if (d->armed_prev) {
    d->armed_prev->armed_next = d->armed_next;
  } else {
    detached_head_ = d->armed_next;
  }
  if (d->armed_next) d->armed_next->armed_prev = d->armed_prev;
  d->armed_prev = d->armed_next = nullptr;
  --detached_;
}

void Worker::drain_detached() noexcept {
  detached_closed_ = true;
  // Nothing armed: nobody can be posting to us on a request's behalf (an
  // owner posts only while its request is armed here).
  if (detached_head_ == nullptr) return;
  drain_inbox();
  while (detached_head_ != nullptr) {
    for (IoDetached* d = detached_head_; d; d = d->armed_next) {
      if (d->worker_stopping) continue;
      io_uring_sqe* sqe = get_sqe_nothrow();
      if (sqe == nullptr) break;  // the next round retries
      d->worker_stopping = true;
      io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(static_cast<IoCompletion*>(d)),
                             0);
      io_uring_sqe_set_data64(sqe, kIgnoreToken);
    }
    // Bounded waits: a round that could not queue every cancel retries.
    reactor_poll(true, 10'000'000);
    drain_inbox();
  }
  // An owner that saw its request armed may have posted to us before the
  // final CQE; those items ran in the rounds above (or run here).
  drain_inbox();
}

io_uring_sqe* io_detached_begin(IoDetached* d) {
  Worker* w = Worker::current();
  if (w == nullptr) throw_no_task("io operation");
  io_uring_sqe* sqe = w->get_sqe();
  if (!w->detached_armed(d)) {
    // Give the SQE back as a no-op: it is already taken from the SQ.
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, kIgnoreToken);
    return nullptr;
  }
  io_uring_sqe_set_data(sqe, static_cast<IoCompletion*>(d));
  return sqe;
}

void io_detached_end(IoDetached* d) noexcept { static_cast<Worker*>(d->owner)->detached_ended(d); }

bool io_detached_on_owner(const IoDetached* d) noexcept {
  return d->owner != nullptr && Worker::current() == static_cast<const Worker*>(d->owner);
}

void io_detached_cancel(IoDetached* d) noexcept {
  auto* w = static_cast<Worker*>(d->owner);
  io_uring_sqe* sqe = w->get_sqe_nothrow();
  if (sqe == nullptr) return;  // nothing to be had: the request runs on
  io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(static_cast<IoCompletion*>(d)), 0);
  io_uring_sqe_set_data64(sqe, kIgnoreToken);
}

bool io_after_step(InboxItem* item) {
  Worker* w = Worker::current();
  if (w == nullptr) throw_no_task("io operation");
  if (tl_current_task == nullptr) return false;
  w->after_step(item);
  return true;
}

void io_detached_post(IoDetached* d) noexcept { static_cast<Worker*>(d->owner)->post_inbox(d); }

// ---------------------------------------------------------------------------
// Operations

namespace {

// On the owner's thread, from reap().
void op_wake(IoOpState* op) noexcept {
  static_cast<Worker*>(op->owner)->complete_wait_owned(op->task);
}

void op_deliver(IoOpState* op, int res, unsigned flags, bool cancel_requested) noexcept {
  op->res = res;
  op->cqe_flags = flags;
  if (cancel_requested) {
    if (res == -ECANCELED) {
      op->cancelled = true;
    } else {
      // It completed anyway: deliver the result, raise the cancel later.
      rearm_cancel(op->task);
    }
  } else if (res == -ECANCELED && op->has_timeout) {
    // Nobody asked for a cancel: the linked timeout ended the op.
    op->timed_out = true;
  }
  op_wake(op);
}

void op_complete(IoCompletion* c, int res, unsigned flags) noexcept {
  auto* op = static_cast<IoOpState*>(c);
  static_cast<Worker*>(op->owner)->op_done(op->file_op);
  const bool cancel_sent = op->phase == kCancelSent;
  op->phase = kDelivered;
  op_deliver(op, res, flags, cancel_sent);
}

void submit_cancel(Worker* w, IoOpState* op) noexcept {
  try {
    io_uring_sqe* sqe = w->get_sqe();
    io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(static_cast<IoCompletion*>(op)), 0);
    io_uring_sqe_set_data64(sqe, kIgnoreToken);
  } catch (...) {
    // No SQE could be had even after a submit: the op simply runs to its
    // end; the cancel is then raised at the next suspension point.
  }
}

bool op_cancel(Suspension* s) noexcept;

// The owner's side of a cancel handed over by another worker (op_cancel).
// This thread now holds the task in kRunning.
void op_cancel_handed(InboxItem* item) noexcept {
  auto* op = static_cast<IoOpState*>(item);
  auto* w = static_cast<Worker*>(op->owner);
  TaskHeader* t = op->task;
  if (op->phase == kInFlight) {
    op->phase = kCancelSent;
    submit_cancel(w, op);
  } else {
    // The CQE came first: its result is delivered and the wait marked done;
    // the cancel is raised at the next suspension point instead.
    op->cancel = op_cancel;
    rearm_cancel(t);
  }
  w->end_step(t);
}

bool op_cancel(Suspension* s) noexcept {
  auto* op = static_cast<IoOpState*>(s);
  auto* owner = static_cast<Worker*>(op->owner);
  Worker* here = Worker::current();
  if (here == owner) {
    if (op->phase != kInFlight) return false;
    op->phase = kCancelSent;
    submit_cancel(owner, op);
    return true;
  }
  // Not the ring's thread: the task goes to the owner, held as it is.
  op->run = op_cancel_handed;
  here->hand_over_task();
  owner->post_inbox(op);
  return true;
}

}  // namespace

// A two-CQE op (IORING_OP_SEND_ZC): whichever of the result and the
// notification comes last hands the result to op_complete, so the phase
// protocol above (and op_done) sees one completion, as for any op. The kernel
// posts the result first, but this does not depend on it. Until the last CQE
// the op stays kInFlight: a cancel then is an ASYNC_CANCEL that finds the
// request either still running (it ends with -ECANCELED, the notification
// follows) or already finished (-ENOENT, ignored); either way the task wakes
// only after the notification.
static void notif_complete(IoCompletion* c, int res, unsigned flags) noexcept {
  auto* op = static_cast<NotifOpState*>(static_cast<IoOpState*>(c));
  if (flags & IORING_CQE_F_NOTIF) {
    op->notif_res = res;
    op->have_notif = true;
    if (!op->have_result) return;
  } else {
    op->first_res = res;
    op->first_flags = flags;
    op->have_result = true;
    if ((flags & IORING_CQE_F_MORE) && !op->have_notif) return;
  }
  op_complete(c, op->first_res, op->first_flags);
}

void io_expect_notification(NotifOpState* op) noexcept {
  op->have_result = false;
  op->have_notif = false;
  op->complete = notif_complete;
}

io_uring_sqe* io_begin(IoOpState* op) {
  TaskHeader* t = current_header();
  Worker* w = Worker::current();
  if (t == nullptr || w == nullptr) throw_no_task("io operation");
  if (take_pending_cancel(t)) {
    op->cancel_taken = true;
    return nullptr;
  }
  // A linked timeout needs its SQE in the same submission as the op's.
  if (op->has_timeout) [[unlikely]]
    w->reserve_sqes(2);
  io_uring_sqe* sqe = w->get_sqe();
  op->task = t;
  op->owner = w;
  op->complete = op_complete;
  op->cancel = op_cancel;
  return sqe;
}

void io_commit(IoOpState* op, io_uring_sqe* sqe, std::coroutine_handle<> h) noexcept {
  io_uring_sqe_set_data(sqe, static_cast<IoCompletion*>(op));
  auto* w = static_cast<Worker*>(op->owner);
  if (op->has_timeout) [[unlikely]] {
    // Set after the Prep ran: liburing's prep functions clear sqe->flags.
    sqe->flags |= IOSQE_IO_LINK;
    // io_begin reserved this SQE: nothing took one since.
    io_uring_sqe* t = w->get_sqe_nothrow();
    io_uring_prep_link_timeout(t, &op->timeout, 0);
    io_uring_sqe_set_data64(t, kIgnoreToken);
  }
  w->op_started(op->file_op);
  suspend_at(op->task, op, h);
}

}  // namespace weft::detail
