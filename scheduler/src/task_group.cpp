// task_group.cpp - TaskGroup's bookkeeping (weft/task_group.hpp), following
// CPython 3.13's taskgroups.py step by step: _on_task_done is
// GroupState::on_done_locked (run by the thread completing the child), the
// cancel of __aexit__'s wait is on_cancel_locked, __aexit__'s tail is
// group_join.
#include <weft/task_group.hpp>

namespace weft::detail {

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
  try {
    errors_.push_back(task_error(t));
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
  std::vector<std::exception_ptr> errors;
  bool parent_cancel_requested;
  {
    std::lock_guard g(s->m_);
    propagate = s->propagate_cancel_;
    propagate_error = s->propagate_error_;
    propagate_message = s->propagate_message_;
    errors = s->errors_;
    parent_cancel_requested = s->parent_cancel_requested_;
  }
  if (parent_cancel_requested && parent.uncancel() == 0) propagate = false;
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
