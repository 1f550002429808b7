// timeout.cpp - the state behind a Timeout scope (weft/timeout.hpp).
//
// The deadline is a call_at callback on the loop of the worker that entered
// (or rescheduled) the scope; the task may run anywhere meanwhile. The
// callback and the task's own enter/reschedule/leave synchronise on a mutex
// in a reference-counted state that the callback co-owns, so a callback that
// has begun running when the scope is left never touches a destroyed Timeout
// and never cancels a task that has already left (the cancel and the state
// change happen under the lock, and leave() reads the state under it: its
// uncancel() can never run before the request it withdraws).
#include <mutex>
#include <weft/join_handle.hpp>
#include <weft/loop.hpp>
#include <weft/timeout.hpp>

namespace weft::detail {

struct TimeoutState {
  enum Phase { kCreated, kEntered, kExpiring, kExpired, kExited };

  std::atomic<std::uint32_t> refs{1};
  mutable std::mutex m;
  Phase phase = kCreated;
  std::optional<TimePoint> when;
  TaskHeader* task = nullptr;  // while entered (the task is running the scope)
  int cancelling_at_entry = 0;
  std::uint64_t generation = 0;  // which armed callback is current
  TimerHandle handle;

  void add_ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Lock held. Arms the deadline for the current `when`.
  void arm_locked() {
    handle.cancel();
    handle = TimerHandle();
    ++generation;
    if (!when) return;
    if (*when <= Clock::now()) {
      // Already due: cancel now, so the body's first await raises (§H 64).
      expire_locked();
      return;
    }
    add_ref();
    struct Ref {
      TimeoutState* s;
      explicit Ref(TimeoutState* p) noexcept : s(p) {}
      Ref(const Ref& o) noexcept : s(o.s) { s->add_ref(); }
      ~Ref() { s->release(); }
    };
    handle = running_loop().call_at(*when, [ref = Ref(this), gen = generation] {
      std::lock_guard g(ref.s->m);
      if (ref.s->generation == gen && ref.s->phase == kEntered) ref.s->expire_locked();
    });
  }
  void expire_locked() noexcept {
    phase = kExpiring;
    handle = TimerHandle();
    request_cancel(task, nullptr);
  }
};

}  // namespace weft::detail

namespace weft {

Timeout::Timeout(std::optional<TimePoint> when) : s_(new detail::TimeoutState) { s_->when = when; }

Timeout::~Timeout() {
  {
    std::lock_guard g(s_->m);
    s_->handle.cancel();
  }
  s_->release();
}

std::optional<TimePoint> Timeout::when() const {
  std::lock_guard g(s_->m);
  return s_->when;
}

bool Timeout::expired() const noexcept {
  std::lock_guard g(s_->m);
  return s_->phase == detail::TimeoutState::kExpiring ||
         s_->phase == detail::TimeoutState::kExpired;
}

void Timeout::reschedule(std::optional<TimePoint> when) {
  std::lock_guard g(s_->m);
  switch (s_->phase) {
    case detail::TimeoutState::kCreated:
      throw RuntimeError("weft::Timeout has not been entered");
    case detail::TimeoutState::kEntered:
      break;
    case detail::TimeoutState::kExpiring:
      throw RuntimeError("Cannot change state of expiring Timeout");
    case detail::TimeoutState::kExpired:
      throw RuntimeError("Cannot change state of expired Timeout");
    case detail::TimeoutState::kExited:
      throw RuntimeError("Cannot change state of finished Timeout");
  }
  s_->when = when;
  s_->arm_locked();
}

void Timeout::enter() {
  detail::TaskHeader* t = detail::current_header();
  std::lock_guard g(s_->m);
  if (s_->phase != detail::TimeoutState::kCreated)
    throw RuntimeError("weft::Timeout has already been entered");
  if (t == nullptr) throw RuntimeError("weft::Timeout should be used inside a task");
  s_->task = t;
  s_->cancelling_at_entry = t->cancelling.load(std::memory_order_acquire);
  s_->phase = detail::TimeoutState::kEntered;
  s_->arm_locked();
}

void Timeout::leave(std::exception_ptr error, bool cancel_error) {
  bool was_expiring = false;
  {
    std::lock_guard g(s_->m);
    s_->handle.cancel();
    s_->handle = TimerHandle();
    ++s_->generation;
    if (s_->phase == detail::TimeoutState::kExpiring) {
      s_->phase = detail::TimeoutState::kExpired;
      was_expiring = true;
    } else if (s_->phase == detail::TimeoutState::kEntered) {
      s_->phase = detail::TimeoutState::kExited;
    }
  }
  if (was_expiring) {
    // Withdraw our request; if nothing else asks to cancel the task, the
    // CancelledError was ours: it becomes TimeoutError.
    int left = TaskRef(s_->task).uncancel();
    if (cancel_error && left <= s_->cancelling_at_entry) {
      try {
        std::rethrow_exception(error);
      } catch (const CancelledError&) {
        std::throw_with_nested(TimeoutError("weft::timeout: the scope's deadline passed"));
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

Timeout timeout(std::optional<Duration> delay) {
  return Timeout(delay ? std::optional<TimePoint>(Clock::now() + *delay) : std::nullopt);
}

Timeout timeout_at(std::optional<TimePoint> when) { return Timeout(when); }

}  // namespace weft
