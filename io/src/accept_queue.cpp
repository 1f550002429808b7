// accept_queue.cpp - the listeners' multishot accept (weft/io/detail/
// accept_queue.hpp; the behaviour users see is described in weft/io/tcp.hpp).
//
// # The pieces
// One IORING_OP_ACCEPT with IORING_ACCEPT_MULTISHOT (`req_`, an IoDetached:
// a request with no task behind it) sits on the ring of the worker that
// armed it and posts a CQE per connection, with IORING_CQE_F_MORE while it
// stays armed. Each CQE goes to the oldest waiting accept() if there is one,
// else to `ready_`. accept() takes from `ready_` without touching the ring;
// only when `ready_` is empty does it wait (an AcceptWaiter in its frame,
// linked into the FIFO `waiters_`).
//
// # Which ring
// The request lives on the ring of the worker whose accept() found it
// disarmed; its CQEs are reaped by that worker and wake waiters wherever
// they run (complete_wait is thread-safe), so any task on any worker may
// call accept(). Only the owner thread submits for the request (the rings
// are SINGLE_ISSUER): its own CQE handler pauses it, and a close() from
// elsewhere posts the cancel to the owner's inbox. A task that moves between
// workers keeps taking from the queue; the request does not follow it.
//
// # Ending
// The request ends (a CQE without F_MORE) when we cancel it (backpressure,
// close), when it fails (EMFILE, ENFILE, ENOMEM, EINVAL after a shutdown,
// ...) or when the kernel decides to. An error goes to the oldest waiter (or
// to the next accept(), if none waits) as today's single accept's error did;
// the request is re-armed by the next accept() rather than at once, so a
// lasting EMFILE cannot spin the ring (one error per accept() call, as with
// a single-shot accept; with several waiters, each gets its own attempt). A
// stopping worker cancels its armed requests and reaps their last CQEs
// (worker_stopping): the queue then just stays disarmed.
//
// # Lifetime
// The queue is shared: the listener holds it, a waiter holds it while it
// waits (its cancel hook and timeout need it), the armed request holds it
// (armed_ref_) until its final CQE, and a posted cancel holds it until the
// owner ran it (posted_ref_). So a listener may be destroyed on any thread
// with the request still in the kernel; the final CQE then finds the queue,
// closes whatever it brings, and lets it go.
//
// # Locking
// One std::mutex guards everything (TSan-visible, unlike absl::Mutex; see
// PLATFORM.md). It is held for a few instructions per CQE and per accept();
// waking a task (complete_wait) and closing descriptors happen after it is
// released, and nothing that can call back into the queue runs under it.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>
#include <utility>
#include <weft/errors.hpp>
#include <weft/io/detail/accept_queue.hpp>
#include <weft/io/errors.hpp>

namespace weft::io::detail {

namespace wd = weft::detail;

std::int64_t accept_timeout_ns(const OpTimeout& timeout) {
  if (!timeout) return -1;
  if (timeout->count() < 0)
    throw ValueError("weft::io::accept: negative timeout (" + std::to_string(timeout->count()) +
                     " ns)");
  return timeout->count();
}

AcceptQueue::AcceptQueue(int fd, int backlog) noexcept
    : fd_(fd), cap_(std::clamp<std::size_t>(backlog < 1 ? 1 : backlog, 1, kMaxQueued)) {
  req_.self = this;
  req_.complete = on_cqe;
}

AcceptQueue::~AcceptQueue() {
  // Only reached with nothing armed and no waiter (both hold references).
  for (int fd : ready_) ::close(fd);
}

std::size_t AcceptQueue::queued() const {
  std::lock_guard g(m_);
  return ready_.size();
}

// ---------------------------------------------------------------------------
// The waiter list (under m_)

void AcceptQueue::push_waiter_locked(AcceptWaiter* w) noexcept {
  waiters_.push_back(w);
  w->queued = true;
}

void AcceptQueue::unlink_waiter_locked(AcceptWaiter* w) noexcept {
  waiters_.remove(w);
  w->queued = false;
}

AcceptWaiter* AcceptQueue::pop_waiter_locked() noexcept {
  AcceptWaiter* w = waiters_.pop_front();
  if (w) w->queued = false;
  return w;
}

// ---------------------------------------------------------------------------
// The request (under m_)

bool AcceptQueue::arm_locked() {
  io_uring_sqe* sqe = wd::io_detached_begin(&req_);
  if (sqe == nullptr) return false;
  io_uring_prep_multishot_accept(sqe, fd_, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data(sqe, static_cast<wd::IoCompletion*>(&req_));
  armed_ = true;
  cancel_sent_ = false;
  armed_ref_ = shared_from_this();
  return true;
}

void AcceptQueue::cancel_locked() noexcept {
  if (!armed_ || cancel_sent_) return;
  if (wd::io_detached_on_owner(&req_)) {
    cancel_sent_ = true;
    wd::io_detached_cancel(&req_);
    return;
  }
  if (cancel_posted_) return;
  cancel_posted_ = true;
  posted_ref_ = shared_from_this();
  req_.run = on_posted_cancel;
  wd::io_detached_post(&req_);
}

void AcceptQueue::on_posted_cancel(wd::InboxItem* item) noexcept {
  AcceptQueue* q = static_cast<Request*>(static_cast<wd::IoDetached*>(item))->self;
  std::shared_ptr<AcceptQueue> keep;  // released after the lock
  std::lock_guard g(q->m_);
  q->cancel_posted_ = false;
  keep = std::move(q->posted_ref_);
  if (q->armed_ && !q->cancel_sent_) {
    q->cancel_sent_ = true;
    wd::io_detached_cancel(&q->req_);
  }
}

void AcceptQueue::on_cqe(wd::IoCompletion* c, int res, unsigned flags) noexcept {
  AcceptQueue* q = static_cast<Request*>(static_cast<wd::IoDetached*>(c))->self;
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  std::shared_ptr<AcceptQueue> keep;  // the request's reference, dropped last
  AcceptWaiter* wake = nullptr;
  int drop_fd = -1;
  {
    std::lock_guard g(q->m_);
    bool ours = false;  // ended by our cancel or the worker's
    if (res >= 0) {
      if (q->closed_) {
        drop_fd = res;
      } else if ((wake = q->pop_waiter_locked()) != nullptr) {
        wake->fd = res;
      } else {
        try {
          q->ready_.push_back(res);
        } catch (...) {
          drop_fd = res;  // out of memory: the connection is refused late
        }
      }
    } else if (!more) {
      ours = res == -ECANCELED && (q->cancel_sent_ || q->req_.worker_stopping);
      if (!ours && !q->closed_) {
        if ((wake = q->pop_waiter_locked()) != nullptr) {
          wake->error = -res;
        } else {
          q->error_ = -res;
        }
      }
    }
    if (!more) {
      const bool stopping = q->req_.worker_stopping;
      q->armed_ = false;
      q->cancel_sent_ = false;
      wd::io_detached_end(&q->req_);
      keep = std::move(q->armed_ref_);
      // Go on accepting: at once if the kernel ended it by itself and there
      // is room, after a pause once accept()s drained half the queue, and
      // after an error only for waiters still waiting (each gets its try).
      bool again = !q->waiters_.empty();
      if (res >= 0) again = again || q->ready_.size() < q->cap_;
      if (ours) again = again || q->ready_.size() <= q->cap_ / 2;
      if (again && !q->closed_ && !stopping && q->error_ == 0) {
        try {
          q->arm_locked();
        } catch (...) {
          // No SQE to be had: the next accept() arms it.
        }
      }
    } else if (!q->closed_ && !q->cancel_sent_ && q->ready_.size() >= q->cap_) {
      // Backpressure: nobody takes the connections; leave the rest in the
      // kernel's backlog until accept()s drain the queue.
      q->cancel_sent_ = true;
      wd::io_detached_cancel(&q->req_);
    }
  }
  if (drop_fd >= 0) ::close(drop_fd);
  if (wake != nullptr) wd::complete_wait(wake->task);  // last touch of *wake
}

// ---------------------------------------------------------------------------
// accept()

bool AcceptQueue::suspend(AcceptWaiter* w, std::coroutine_handle<> h) {
  wd::TaskHeader* t = wd::current_header();
  Loop* loop = Loop::current();
  if (t == nullptr || loop == nullptr) wd::throw_no_task("accept");
  if (wd::take_pending_cancel(t)) {
    w->cancelled = true;
    return false;
  }
  std::lock_guard g(m_);
  if (closed_) {
    w->error = EBADF;
    return false;
  }
  if (!ready_.empty()) {
    w->fd = ready_.front();
    ready_.pop_front();
    if (!armed_ && error_ == 0 && ready_.size() <= cap_ / 2) {
      try {
        arm_locked();  // the pause is over
      } catch (...) {
        // Retried by the next accept(); this one has its connection.
      }
    }
    return false;
  }
  if (error_ != 0) {
    w->error = std::exchange(error_, 0);
    return false;
  }
  if (!armed_ && !arm_locked()) {
    w->error = ECANCELED;  // the worker is stopping
    return false;
  }
  w->id = next_id_++;
  if (w->timeout_ns >= 0) {
    // A weak reference: a cancelled timer stays in the loop's heap until its
    // deadline, and must not keep the queue alive that long.
    w->timer = loop->call_later(std::chrono::nanoseconds(w->timeout_ns),
                                [self = weak_from_this(), id = w->id] {
                                  if (auto q = self.lock()) q->expire(id);
                                });
  }
  w->task = t;
  w->queue = shared_from_this();
  w->cancel = on_waiter_cancel;
  push_waiter_locked(w);
  wd::suspend_at(t, w, h);
  return true;
}

int AcceptQueue::resume(AcceptWaiter* w) {
  w->timer.cancel();
  w->timer = TimerHandle();
  w->queue.reset();
  if (w->cancelled) wd::throw_cancelled(wd::current_header());
  if (w->fd >= 0) return std::exchange(w->fd, -1);
  if (w->timed_out) throw_timeout("accept");
  throw_error(w->error, "accept");
}

bool AcceptQueue::on_waiter_cancel(wd::Suspension* s) noexcept {
  auto* w = static_cast<AcceptWaiter*>(s);
  {
    std::lock_guard g(w->queue->m_);
    // Not queued: a CQE, a timeout or close() completed it first; it is
    // delivered and the cancel raised at the next suspension point, so the
    // connection is not lost.
    if (!w->queued) return false;
    w->queue->unlink_waiter_locked(w);
    w->cancelled = true;
  }
  wd::complete_wait(w->task);
  return true;
}

void AcceptQueue::expire(std::uint64_t id) noexcept {
  AcceptWaiter* hit = nullptr;
  {
    std::lock_guard g(m_);
    for (AcceptWaiter* p = waiters_.front(); p; p = p->next) {
      if (p->id == id) {
        hit = p;
        break;
      }
    }
    if (hit == nullptr) return;  // it completed first
    unlink_waiter_locked(hit);
    hit->timed_out = true;
  }
  wd::complete_wait(hit->task);
}

// ---------------------------------------------------------------------------
// Closing

void AcceptQueue::close(bool shut_down) noexcept {
  std::deque<int> fds;
  AcceptWaiter* waiters = nullptr;
  {
    std::lock_guard g(m_);
    if (closed_) return;
    closed_ = true;
    // The request holds a reference to the socket, so close(2) alone would
    // leave it listening until the cancel lands; shutdown(2) stops it now
    // (new connections are refused) and ends the request (EINVAL).
    if (shut_down && armed_) ::shutdown(fd_, SHUT_RDWR);
    fds.swap(ready_);
    waiters = waiters_.take_all();
    for (AcceptWaiter* w = waiters; w; w = w->next) {
      w->queued = false;
      w->error = EBADF;
    }
    error_ = 0;
    cancel_locked();
  }
  for (int fd : fds) ::close(fd);
  while (waiters != nullptr) {
    AcceptWaiter* next = waiters->next;  // read first: waking may free it
    wd::complete_wait(waiters->task);
    waiters = next;
  }
}

}  // namespace weft::io::detail
