// task_group.cpp - TaskGroup's bookkeeping (weft/task_group.hpp), following
// CPython 3.13's taskgroups.py step by step: _on_task_done is
// GroupState::on_done_locked (run by the thread completing the child), the
// cancel of __aexit__'s wait is on_cancel_locked, __aexit__'s tail is
// group_join.
#include <weft/runtime.hpp>  // KeyboardInterrupt
#include <weft/task_group.hpp>

namespace weft::detail {

namespace {

/// taskgroups.py's _is_base_error: the exceptions re-raised bare, not inside
/// a group. weft has KeyboardInterrupt and no SystemExit.
bool is_base_error(const std::exception_ptr& e) noexcept {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const KeyboardInterrupt&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

GroupState* GroupState::enter() {
  TaskHeader* t = current_header();
  if (t == nullptr) throw RuntimeError("weft::TaskGroup cannot determine the parent task");
  auto* s = new GroupState;
  s->parent_ = t;
  s->retrieve_errors();
  return s;
}

std::size_t GroupState::begin_spawn() {
  std::lock_guard g(m_);
  if (exiting_ && done_ == added_) throw RuntimeError("weft::TaskGroup is finished");
  if (aborting_) throw RuntimeError("weft::TaskGroup is shutting down");
  return reserve_slot_locked();
}

void GroupState::abort_locked() noexcept {
  aborting_ = true;
  cancel_unfinished_locked(std::string());
}

void GroupState::on_done_locked(TaskHeader* t, std::size_t) noexcept {
  std::uint32_t s = t->state.load(std::memory_order_acquire);
  if (!(s & TaskHeader::kOutcomeError)) return;  // a value, or cancelled: not an error
  std::exception_ptr e = task_error(t);
  if (!base_error_ && is_base_error(e)) base_error_ = e;
  try {
    errors_.push_back(std::move(e));
  } catch (...) {
    // Out of memory: the failure still aborts the group below.
  }
  if (!aborting_ && !parent_cancel_requested_) {
    abort_locked();
    parent_cancel_requested_ = true;
    request_cancel(parent_, nullptr);
  }
}

bool GroupState::on_cancel_locked(WatchWait* w) noexcept {
  if (!aborting_) {
    // The parent is cancelled from outside: cancel the children and keep
    // waiting; CancelledError is raised once they have finished.
    propagate_cancel_ = true;
    try {
      propagate_message_ = w->cancel_message;
    } catch (...) {
    }
    abort_locked();
  }
  return ready_locked(*w);
}

Task<void> group_join(WatchRef<GroupState> s, std::exception_ptr body_error, bool body_cancelled) {
  {
    std::lock_guard g(s->m_);
    s->exiting_ = true;
    if (!s->base_error_ && is_base_error(body_error)) s->base_error_ = body_error;
    if (body_error && !s->aborting_) s->abort_locked();
    if (body_cancelled) {
      s->propagate_cancel_ = true;
      s->propagate_error_ = body_error;
    }
  }
  co_await watch_until(s.get(), WatchWait::kAll);

  TaskRef parent(s->parent_);
  bool propagate;
  std::exception_ptr propagate_error;
  std::string propagate_message;
  std::exception_ptr base_error;
  std::vector<std::exception_ptr> errors;
  bool parent_cancel_requested;
  {
    std::lock_guard g(s->m_);
    base_error = s->base_error_;
    propagate = s->propagate_cancel_;
    propagate_error = s->propagate_error_;
    propagate_message = s->propagate_message_;
    errors = s->errors_;
    parent_cancel_requested = s->parent_cancel_requested_;
  }
  if (parent_cancel_requested && parent.uncancel() == 0) propagate = false;
  // KeyboardInterrupt wins over everything, bare (§K 82). CPython 3.13 raises
  // it before the uncancel above, leaving its own cancel request counted on
  // the parent; weft withdraws it first, so cancelling() is back to its value
  // on entry here too (§K 84).
  if (base_error) std::rethrow_exception(base_error);
  if (propagate && errors.empty()) {
    if (propagate_error) std::rethrow_exception(propagate_error);
    throw CancelledError(propagate_message);
  }
  if (body_error && !body_cancelled) errors.push_back(body_error);
  if (!errors.empty()) {
    // Keep an outside cancel requested (and raised at the next await) while
    // the group's own request is withdrawn.
    if (parent.cancelling() > 0) {
      parent.uncancel();
      parent.cancel();
    }
    throw ExceptionGroup("unhandled errors in a TaskGroup", std::move(errors));
  }
}

}  // namespace weft::detail
