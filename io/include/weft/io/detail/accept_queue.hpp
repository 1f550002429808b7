// weft/io/detail/accept_queue.hpp - the multishot accept behind TcpListener
// and UnixListener (the design is in weft/io/tcp.hpp's header comment; the
// mechanism in io/src/accept_queue.cpp). Public only because the listeners'
// accept() returns an AcceptOp; not an API of its own.
#pragma once

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <weft/detail/intrusive_list.hpp>
#include <weft/detail/task_header.hpp>
#include <weft/io/buffer.hpp>
#include <weft/io_op.hpp>
#include <weft/loop.hpp>

namespace weft::io::detail {

class AcceptQueue;

/// One accept() waiting for a connection; lives in the awaiting frame.
struct AcceptWaiter : weft::detail::Suspension {
  AcceptWaiter* next = nullptr;  // the queue's FIFO of waiters (under its mutex)
  AcceptWaiter* prev = nullptr;
  weft::detail::TaskHeader* task = nullptr;
  std::shared_ptr<AcceptQueue> queue;  // set while suspended: the hooks need it
  std::uint64_t id = 0;                // names the waiter to its timeout callback
  bool queued = false;                 // in the FIFO (under the mutex)
  std::int64_t timeout_ns = -1;        // >= 0: a timeout
  TimerHandle timer;                   // the timeout's callback on the loop
  // The outcome, written before the waiter is woken.
  int fd = -1;
  int error = 0;
  bool cancelled = false;
  bool timed_out = false;
};

/// A listener's queue of accepted descriptors, fed by one multishot accept
/// on a worker's ring. Shared by the listener, a waiter while it waits, and
/// the armed request itself (so the request's last CQE never finds it gone).
/// Every member is thread-safe.
class AcceptQueue : public std::enable_shared_from_this<AcceptQueue> {
 public:
  /// The most descriptors kept before the multishot is paused (the cap is
  /// min(backlog, this); see tcp.hpp). Chosen, not measured: enough for a
  /// burst between two runs of an accept loop (the 10,000-connection stress
  /// test pauses and re-arms 42 times through it without a lost
  /// connection); more only moves the kernel's backlog into this process.
  static constexpr std::size_t kMaxQueued = 64;

  /// For listening socket `fd` (not owned). `backlog` caps the queue too.
  AcceptQueue(int fd, int backlog) noexcept;
  ~AcceptQueue();
  AcceptQueue(const AcceptQueue&) = delete;
  AcceptQueue& operator=(const AcceptQueue&) = delete;

  /// await_suspend of an accept(): false if `w` completed at once (a queued
  /// descriptor, a pending error, a pending cancel), else `w` waits. Throws
  /// RuntimeError outside a task, std::system_error if the ring has no SQE.
  bool suspend(AcceptWaiter* w, std::coroutine_handle<> h);
  /// await_resume: the accepted descriptor, or throws CancelledError,
  /// TimeoutError("accept: timed out"), std::system_error("accept: ...").
  static int resume(AcceptWaiter* w);

  /// The listener is closing (`shut_down`: shutdown(2) the socket first so
  /// it stops listening at once). Waiters fail with EBADF, queued
  /// descriptors are closed, the multishot is cancelled (on its ring; from
  /// another thread through that worker's inbox); later CQEs close what they
  /// bring. Any thread; idempotent.
  void close(bool shut_down) noexcept;

  /// How many accepted descriptors wait to be taken (tests, diagnostics).
  std::size_t queued() const;

 private:
  struct Request : weft::detail::IoDetached {
    AcceptQueue* self = nullptr;
  };
  static void on_cqe(weft::detail::IoCompletion* c, int res, unsigned flags) noexcept;
  static void on_posted_cancel(weft::detail::InboxItem* item) noexcept;
  static bool on_waiter_cancel(weft::detail::Suspension* s) noexcept;
  void expire(std::uint64_t id) noexcept;

  // Under m_:
  bool arm_locked();  // on the current worker; false if it refuses (stopping)
  void push_waiter_locked(AcceptWaiter* w) noexcept;
  AcceptWaiter* pop_waiter_locked() noexcept;
  void unlink_waiter_locked(AcceptWaiter* w) noexcept;
  void cancel_locked() noexcept;  // ask the request's ring to end it

  mutable std::mutex m_;
  const int fd_;
  const std::size_t cap_;
  Request req_;
  bool armed_ = false;          // req_ is in a ring (its final CQE not reaped)
  bool cancel_sent_ = false;    // we asked that ring to end it (pause or close)
  bool cancel_posted_ = false;  // req_ (as an inbox item) is in the owner's inbox
  bool closed_ = false;         // the listener is closed
  std::deque<int> ready_;       // accepted, not yet taken; FIFO
  int error_ = 0;               // the multishot's error for the next accept()
  weft::detail::IntrusiveList<AcceptWaiter> waiters_;  // waiting accept()s, FIFO
  std::uint64_t next_id_ = 1;
  std::shared_ptr<AcceptQueue> armed_ref_;   // held while armed_
  std::shared_ptr<AcceptQueue> posted_ref_;  // held while cancel_posted_
};

/// What TcpListener::accept / UnixListener::accept return: co_await it at
/// once. Resolves to `Stream` (built from the accepted descriptor).
template <class Stream>
class [[nodiscard]] AcceptOp {
 public:
  AcceptOp(AcceptQueue* q, OpTimeout timeout);
  AcceptOp(const AcceptOp&) = delete;
  AcceptOp& operator=(const AcceptOp&) = delete;

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    if (q_ == nullptr) return false;  // a closed listener: EBADF below
    return q_->suspend(&w_, h);
  }
  Stream await_resume() {
    if (q_ == nullptr) w_.error = EBADF;
    return Stream(AcceptQueue::resume(&w_));
  }

 private:
  AcceptQueue* q_;
  AcceptWaiter w_;
};

/// Validates a timeout (ValueError if negative) into nanoseconds, -1 if none.
std::int64_t accept_timeout_ns(const OpTimeout& timeout);

template <class Stream>
AcceptOp<Stream>::AcceptOp(AcceptQueue* q, OpTimeout timeout) : q_(q) {
  w_.timeout_ns = accept_timeout_ns(timeout);
}

}  // namespace weft::io::detail
