// task.cpp - the life of a spawned task: spawn, wake, cancel, complete,
// release. The protocol is described in weft/detail/task_header.hpp.
#include <cxxabi.h>

#include <cassert>
#include <cstdio>
#include <typeinfo>
#include <unordered_map>
#include <weft/join_handle.hpp>
#include <weft/runtime.hpp>

#include "worker.hpp"

namespace weft::detail {

thread_local constinit TaskHeader* tl_current_task = nullptr;
thread_local constinit void* tl_next_coroutine = nullptr;

namespace {

// Cold per-task data (name, cancel message) lives in a side table, split in
// stripes chosen by the header's address, each a map under a spin lock:
// cancel() may race with the task reading its message, and these paths are
// rare. A task with an entry has kHasExtras set, so the common task (no
// name, never cancelled with a message) costs no lookup, not even when its
// frame is freed.
struct alignas(64) Stripe {
  std::atomic<bool> lock{false};
  // Created when a task of this stripe gets extras, deleted when the last
  // goes (never by static destruction: a task may be released after it).
  std::unordered_map<const TaskHeader*, TaskExtras*>* map = nullptr;
};
Stripe g_stripes[64];
struct StripeGuard {
  explicit StripeGuard(const TaskHeader* t) noexcept
      : s(g_stripes[(reinterpret_cast<std::uintptr_t>(t) >> 6) & 63]) {
    while (s.lock.exchange(true, std::memory_order_acquire)) {
      while (s.lock.load(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
  }
  ~StripeGuard() { s.lock.store(false, std::memory_order_release); }
  Stripe& s;
};

/// The task's extras, created if it has none. Throws std::bad_alloc.
TaskExtras* extras_of(TaskHeader* t) {
  StripeGuard g(t);
  if (g.s.map == nullptr) g.s.map = new std::unordered_map<const TaskHeader*, TaskExtras*>();
  auto [it, fresh] = g.s.map->try_emplace(t, nullptr);
  if (fresh) {
    try {
      it->second = new TaskExtras();
    } catch (...) {
      g.s.map->erase(it);
      throw;
    }
    t->state.fetch_or(TaskHeader::kHasExtras, std::memory_order_release);
  }
  return it->second;
}

/// The task's extras, or null if it has none. The pointer stays valid while
/// the task lives.
TaskExtras* find_extras(const TaskHeader* t) noexcept {
  if (!(t->state.load(std::memory_order_acquire) & TaskHeader::kHasExtras)) return nullptr;
  StripeGuard g(t);
  if (g.s.map == nullptr) return nullptr;
  auto it = g.s.map->find(t);
  return it == g.s.map->end() ? nullptr : it->second;
}

/// Deletes the task's extras, if any (its last reference is going).
void drop_extras(const TaskHeader* t) noexcept {
  if (!(t->state.load(std::memory_order_relaxed) & TaskHeader::kHasExtras)) return;
  TaskExtras* e = nullptr;
  {
    StripeGuard g(t);
    if (g.s.map == nullptr) return;
    auto it = g.s.map->find(t);
    if (it == g.s.map->end()) return;
    e = it->second;
    g.s.map->erase(it);
    if (g.s.map->empty()) {
      // Its buckets would stay sized for the largest crowd of named tasks.
      delete g.s.map;
      g.s.map = nullptr;
    }
  }
  delete e;
}

void default_report(const ExceptionContext& ctx) {
  std::string what;
  if (ctx.exception) {
    try {
      std::rethrow_exception(ctx.exception);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (const CancelledError& e) {
      what = std::string("CancelledError: ") + e.what();
    } catch (...) {
      what = "unknown exception";
    }
  }
  std::fprintf(stderr, "weft: %s%s%s\n", ctx.message.c_str(), what.empty() ? "" : ": ",
               what.c_str());
}

}  // namespace

namespace {
// Names the task in the report: its handle cannot be passed (there is none
// left, or it is being destroyed).
ExceptionContext never_retrieved(TaskHeader* t) {
  TaskExtras* e = find_extras(t);
  std::string name = e && !e->name.empty() ? e->name : "Task-" + std::to_string(t->id);
  return {"Task exception was never retrieved (task " + name + ")", task_error(t), TaskRef()};
}
}  // namespace

bool current_exception_is_cancel() noexcept {
  std::type_info* ti = abi::__cxa_current_exception_type();
  return ti != nullptr && *ti == typeid(CancelledError);
}

namespace {
// The CancelledError weft raised last on this thread (see take_weft_cancel).
thread_local std::exception_ptr tl_weft_cancel;
}  // namespace

void throw_cancelled(TaskHeader* t) {
  std::exception_ptr e =
      std::make_exception_ptr(CancelledError(t ? cancel_message(t) : std::string()));
  tl_weft_cancel = e;
  std::rethrow_exception(std::move(e));
}

bool take_weft_cancel(const std::exception_ptr& e) noexcept {
  if (!tl_weft_cancel || e != tl_weft_cancel) return false;
  tl_weft_cancel = nullptr;
  return true;
}

std::string cancel_message(const TaskHeader* t) {
  TaskExtras* e = find_extras(t);
  if (!e) return {};
  StripeGuard g(t);
  return e->cancel_message;
}

void throw_no_task(const char* what) {
  throw RuntimeError(std::string("weft::") + what + ": not inside a weft task");
}
void throw_no_loop(const char* what) {
  throw RuntimeError(std::string("weft::") + what + ": no running event loop");
}

Runtime* current_runtime() noexcept {
  Worker* w = Worker::current();
  return w ? &w->rt().facade : nullptr;
}

namespace {
// A thread outside the runtime takes the ids of its spawns from a block of
// kForeignIdBlock it reserved, one locked add per block instead of one per
// spawn. Ids stay unique (they name tasks, "Task-<id>"); those of different
// threads interleave by blocks.
constexpr std::uint32_t kForeignIdBlock = 64;
struct ForeignIds {
  std::uint64_t serial = 0;  // RuntimeImpl::serial of the runtime the block is of
  std::uint32_t next = 0;
  std::uint32_t end = 0;
};
thread_local constinit ForeignIds t_foreign_ids;

std::uint32_t next_foreign_id(RuntimeImpl& impl) noexcept {
  ForeignIds& f = t_foreign_ids;
  if (f.serial != impl.serial || f.next == f.end) {
    f.next = impl.foreign_ids.fetch_add(kForeignIdBlock, std::memory_order_relaxed);
    f.end = f.next + kForeignIdBlock;
    f.serial = impl.serial;
  }
  return f.next++;
}

// Sets up and publishes a spawned task with two references (its own and
// the JoinHandle's, which the caller adopts). `w`: the calling thread's
// worker if it belongs to `impl`, else null (the task then goes through the
// injection queue). Throws std::bad_alloc (the name) before anything is set
// up, so the caller still owns the coroutine.
void spawn_on(RuntimeImpl& impl, Worker* w, TaskHeader* h, std::coroutine_handle<> root,
              std::string_view name) {
  if (!name.empty()) {
    TaskExtras* e = extras_of(h);
    try {
      e->name = std::string(name);
    } catch (...) {
      drop_extras(h);
      throw;
    }
  }
  h->runtime = &impl.facade;  // marks the task spawned (PromiseBase::spawned)
  assert(own_coroutine(h) == root && "the promise is not where own_coroutine looks");
  h->resume_point = root;
  // The id names the registry shard: the spawning worker's, or the last
  // one for spawns from outside (see RuntimeImpl::registry_insert).
  if (w != nullptr) {
    h->id = w->next_task_id();
  } else {
    h->id = next_foreign_id(impl) * impl.num_shards + impl.num_shards - 1;
  }
  // Not published yet, so plain stores do (the state may hold kHasExtras).
  // Both come before the registry insertion, which publishes the task to
  // all_tasks: a lister may then take a reference and register a done
  // callback (kHasWaiters) or cancel it, and a store after that would
  // erase the bit (the callback never ran) or let its wake queue the task
  // a second time (it was not kScheduled yet).
  h->refs.store(2, std::memory_order_relaxed);
  h->state.store(
      TaskHeader::kScheduled | (h->state.load(std::memory_order_relaxed) & TaskHeader::kHasExtras),
      std::memory_order_release);
  impl.registry_insert(h, w);
  if (w != nullptr) {
    bump(const_cast<Counters&>(w->counters()).tasks_spawned);
    w->push_back(h);
  } else {
    impl.schedule_remote(h);
  }
}
}  // namespace

bool spawn_here(TaskHeader* h, std::coroutine_handle<> root, std::string_view name) {
  Worker* w = Worker::current();
  if (w == nullptr) return false;
  spawn_on(w->rt(), w, h, root, name);
  return true;
}

void runtime_spawn(Runtime* rt, TaskHeader* h, std::coroutine_handle<> root,
                   std::string_view name) {
  RuntimeImpl& impl = rt->impl();
  Worker* w = Worker::current();
  spawn_on(impl, w != nullptr && &w->rt() == &impl ? w : nullptr, h, root, name);
}

namespace {
// Moves t towards kScheduled, OR-ing `extra` into its state; queues it if
// this call is the one that made it scheduled.
void wake_with(TaskHeader* t, std::uint32_t extra) noexcept {
  std::uint32_t s = t->state.load(std::memory_order_acquire);
  std::uint32_t ns;
  for (;;) {
    if (s & TaskHeader::kComplete) return;
    if ((s & TaskHeader::kRunning) ||
        (s & (TaskHeader::kScheduled | TaskHeader::kStarted)) == TaskHeader::kScheduled) {
      // Running, or taking its first step (which runs in kScheduled, see
      // run_task), or queued for it: kNotified makes end_step queue it again
      // if the step ends suspended.
      ns = s | TaskHeader::kNotified | extra;
    } else if (s & TaskHeader::kScheduled) {
      ns = s | extra;  // queued: its next step sees `extra`
    } else {
      ns = s | TaskHeader::kScheduled | extra;
    }
    if (ns == s) return;
    if (t->state.compare_exchange_weak(s, ns, std::memory_order_acq_rel, std::memory_order_acquire))
      break;
  }
  // Only the call that made the task scheduled queues it; until then nobody
  // else can run it, so touching it here is safe. Every other outcome means
  // this call is done with the task.
  if ((s & (TaskHeader::kRunning | TaskHeader::kScheduled)) != 0) return;
  // A worker running CpuPool jobs counts as the worker here, so a task its
  // job wakes takes its LIFO slot instead of waking a parked worker.
  Worker* w = Worker::current_or_helping();
  if (w != nullptr && &w->rt().facade == t->runtime) {
    if ((s >> TaskHeader::kLastWorkerShift) != w->index_value() + 1)
      bump(const_cast<Counters&>(w->counters()).remote_wakes);
    w->schedule_local(t, /*lifo=*/true);
  } else {
    t->runtime->impl().schedule_remote(t);
  }
}
}  // namespace

void wake(TaskHeader* t) noexcept { wake_with(t, 0); }

void complete_wait(TaskHeader* t) noexcept { wake_with(t, TaskHeader::kWaitDone); }

bool request_cancel(TaskHeader* t, const std::string* msg) noexcept {
  if (t->state.load(std::memory_order_acquire) & TaskHeader::kComplete) return false;
  // Counted up to INT16_MAX (the field is 16 bits so the header stays 72
  // bytes); a task asked to cancel 32,767 times without withdrawing any
  // request stays at that count.
  std::int16_t c = t->cancelling.load(std::memory_order_relaxed);
  while (c < INT16_MAX && !t->cancelling.compare_exchange_weak(c, static_cast<std::int16_t>(c + 1),
                                                               std::memory_order_acq_rel,
                                                               std::memory_order_relaxed)) {
  }
  if (msg != nullptr &&
      (!msg->empty() || (t->state.load(std::memory_order_acquire) & TaskHeader::kHasExtras))) {
    try {
      TaskExtras* e = extras_of(t);
      StripeGuard g(t);
      e->cancel_message = *msg;
    } catch (...) {
      // Out of memory for the message: the request itself still stands.
    }
  }
  t->state.fetch_or(TaskHeader::kCancelPending, std::memory_order_acq_rel);
  wake(t);
  return true;
}

bool add_waiter(TaskHeader* t, WaitNode* n) noexcept {
  // Announced before the push: a completer whose fetch_or comes after ours
  // sees kHasWaiters and closes the list, which then either holds our node
  // or refuses it (push returns false: the task is complete). One whose
  // fetch_or came first left kComplete for us to see here.
  std::uint32_t s = t->state.load(std::memory_order_acquire);
  if (!(s & TaskHeader::kHasWaiters))
    s = t->state.fetch_or(TaskHeader::kHasWaiters, std::memory_order_acq_rel);
  if (s & TaskHeader::kComplete) return false;
  return t->waiters.push(n);
}

void complete_task(TaskHeader* t, bool threw, bool threw_cancel) noexcept {
  std::uint32_t outcome = TaskHeader::kComplete;
  std::uint32_t s = t->state.load(std::memory_order_acquire);
  if (threw) {
    outcome |= threw_cancel ? TaskHeader::kOutcomeCancelled : TaskHeader::kOutcomeError;
  } else if (s & TaskHeader::kCancelPending) {
    // A request that never reached a suspension point: the task still ends
    // cancelled, as asyncio's does when it returns before its next await.
    outcome |= TaskHeader::kOutcomeCancelled;
  }
  // Off the registry at once if it failed (whether anyone can still see the
  // error is decided below, and all_tasks must not hand out a new handle
  // meanwhile), or if its shard is this worker's own (entering it costs no
  // locked instruction, RegistryShard). Then the task's own reference stays
  // with us (kUnlinked), and run_task, the only caller (the coroutine's
  // final suspend runs inside it), drops it when the step has ended.
  // Otherwise it goes, with that reference, to this worker's next batch of
  // unlinks from another shard (Worker::defer_unregister), which keeps the
  // frame alive until then.
  Worker* w = Worker::current();
  assert(w != nullptr && &w->rt() == &t->runtime->impl() && "complete_task off its runtime");
  RuntimeImpl& rt = t->runtime->impl();
  const bool unlink =
      (outcome & TaskHeader::kOutcomeError) || rt.shard_of(t->id) == w->index_value();
  std::uint32_t drops = 0;  // references dropped while listed (local_drops)
  if (unlink) {
    drops = rt.registry_remove(t, w);
    outcome |= TaskHeader::kUnlinked;
  }
  // Only the task's own reference left: no handle exists, and none can be
  // made any more (the registry no longer lists it), so nobody can retrieve
  // an error. Decided before the waiters fire: a woken waiter may retrieve
  // the error and drop its handle, which must not look like "no handle".
  const std::uint32_t refs = t->refs.load(std::memory_order_acquire);
  const bool unobservable = unlink && refs - drops == 1;
  if (drops != 0) {
    // Fold the local drops in. With no other holder left nobody else
    // touches the count (the drops were made inside the shard, before our
    // unlink there), so a plain store does it.
    if (unobservable) {
      t->refs.store(1, std::memory_order_relaxed);
    } else {
      t->refs.fetch_sub(drops, std::memory_order_acq_rel);
    }
  }
  if (unobservable && !(outcome & TaskHeader::kOutcomeError)) {
    // Nobody else can reach the task any more: no thread reads or writes
    // its state, so the outcome is published with a plain store, and a
    // detached task (the common spawn whose handle is dropped) ends
    // without a locked instruction. The load above synchronised with the
    // last handle's release: what its holder did to the state is seen. A
    // done callback may still be registered (its node outlives the
    // handle that added it): it fires as usual.
    s = t->state.load(std::memory_order_relaxed);
    t->state.store(s | outcome, std::memory_order_relaxed);
    if (s & TaskHeader::kHasWaiters) t->waiters.close_and_fire(t);
    return;
  }
  const std::uint32_t before = t->state.fetch_or(outcome, std::memory_order_release);
  if (!unlink) w->defer_unregister(t);
  // No registration announced before our fetch_or: none can come any more
  // (add_waiter sees kComplete), so the list needs no closing.
  if (before & TaskHeader::kHasWaiters) t->waiters.close_and_fire(t);
  if ((outcome & TaskHeader::kOutcomeError) && unobservable &&
      !(t->state.fetch_or(TaskHeader::kRetrieved, std::memory_order_acq_rel) &
        TaskHeader::kRetrieved)) {
    // Report now, while the runtime is certainly alive.
    try {
      t->runtime->impl().report(never_retrieved(t));
    } catch (...) {
      // No memory to describe it: nothing more can be done.
    }
  }
}

namespace {

// The last reference is gone: reports an error nobody retrieved, then
// destroys the frame.
void destroy_task(TaskHeader* t) noexcept;

// On the worker owning t's registry shard, while t is listed there: counts
// the dropped reference in t->local_drops instead (RuntimeImpl::
// drop_listed_ref). A JoinHandle dropped right after its spawn (a detached
// task) so pays no locked instruction.
bool drop_listed(TaskHeader* t) noexcept {
  Worker* w = Worker::current();
  if (w == nullptr || t->runtime != &w->rt().facade) return false;
  RuntimeImpl& rt = w->rt();
  if (rt.shard_of(t->id) != w->index_value()) return false;
  return rt.drop_listed_ref(t, w);
}

}  // namespace

void release_ref(TaskHeader* t) noexcept {
  // A count of 1 is our reference alone, and none can be added any more:
  // the registry lists only tasks that still hold their own reference (or
  // a worker's, taken to unlink them later), and a new reference is made
  // only from the registry or from an existing one. So the last release
  // reads the count instead of a locked decrement (one per task: the
  // worker's batch or the JoinHandle, whichever goes last).
  if (t->refs.load(std::memory_order_acquire) != 1) {
    if (drop_listed(t)) return;
    if (t->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  }
  destroy_task(t);
}

void release_refs(TaskHeader* t, std::uint32_t n) noexcept {
  // As release_ref: a count of n is the caller's references alone.
  if (t->refs.load(std::memory_order_acquire) != n &&
      t->refs.fetch_sub(n, std::memory_order_acq_rel) != n)
    return;
  destroy_task(t);
}

namespace {

void destroy_task(TaskHeader* t) noexcept {
  // The last reference: nobody else can reach the task, so a plain load.
  const std::uint32_t s = t->state.load(std::memory_order_acquire);
  if ((s & TaskHeader::kOutcomeError) && !(s & TaskHeader::kRetrieved)) {
    try {
      ExceptionContext ctx = never_retrieved(t);
      // The runtime may be gone by now; use its hook only from one of its
      // workers, and stderr elsewhere.
      Worker* w = Worker::current();
      if (w != nullptr) {
        w->rt().report(ctx);
      } else {
        default_report(ctx);
      }
    } catch (...) {
      // No memory to describe it: nothing more can be done.
    }
  }
  if (s & TaskHeader::kHasExtras) drop_extras(t);  // the common task has none: no call
  own_coroutine(t).destroy();
}

}  // namespace

}  // namespace weft::detail

void weft::call_exception_handler(const ExceptionContext& ctx) noexcept {
  using namespace weft::detail;
  if (Worker* w = Worker::current()) {
    w->rt().report(ctx);
  } else {
    try {
      default_report(ctx);
    } catch (...) {
    }
  }
}

namespace weft::detail {

void RuntimeImpl::report(const ExceptionContext& ctx) const noexcept {
  try {
    if (opts.exception_handler) {
      opts.exception_handler(ctx);
    } else {
      default_report(ctx);
    }
  } catch (...) {
    std::fprintf(stderr, "weft: the exception handler threw; ignored\n");
  }
}

// ---- join ----

namespace {
void join_fire(WaitNode* n, TaskHeader*) noexcept {
  auto* w = static_cast<JoinWaiter*>(n);
  complete_wait(w->waiter);
}
bool join_cancel(Suspension* s) noexcept {
  auto* w = static_cast<JoinWaiter*>(s);
  std::string msg = cancel_message(w->waiter);
  return request_cancel(w->target, &msg);
}
}  // namespace

bool join_await_suspend(JoinWaiter* w, std::coroutine_handle<> h) {
  TaskHeader* t = current_header();
  if (t == nullptr) throw_no_task("JoinHandle await");
  if (w->target == t) throw RuntimeError("Task cannot await on itself");
  if (take_pending_cancel(t)) {
    // A pending request is forwarded to what the task awaits (§C 30).
    std::string msg = cancel_message(t);
    if (!request_cancel(w->target, &msg)) {
      rearm_cancel(t);
      return false;
    }
  }
  w->waiter = t;
  w->fire = join_fire;
  w->cancel = join_cancel;
  suspend_at(t, w, h);
  if (!add_waiter(w->target, w)) {
    t->waiting_on = nullptr;
    return false;
  }
  return true;
}

namespace {
struct DoneCallbackWaiter : WaitNode {
  CallbackNode* cb = nullptr;
};
void done_fire(WaitNode* n, TaskHeader* t) noexcept {
  auto* d = static_cast<DoneCallbackWaiter*>(n);
  post_callback_any(d->cb, t->runtime);
  delete d;
}
}  // namespace

void post_callback_any(CallbackNode* cb, Runtime* rt) noexcept {
  Worker* w = Worker::current();
  if (w != nullptr) {
    w->post_soon_owner(cb);
  } else {
    rt->impl().workers[0]->post_foreign(cb);
  }
}

void post_done_callback(TaskHeader* h, CallbackNode* cb) {
  auto* d = new DoneCallbackWaiter;
  d->fire = done_fire;
  d->cb = cb;
  if (!add_waiter(h, d)) {
    delete d;
    post_callback_any(cb, h->runtime);
  }
}

}  // namespace weft::detail

// ---- TaskRef ----
namespace weft {

int TaskRef::uncancel() const noexcept {
  if (!h_) return 0;
  std::int16_t n = h_->cancelling.load(std::memory_order_acquire);
  while (n > 0 && !h_->cancelling.compare_exchange_weak(n, static_cast<std::int16_t>(n - 1),
                                                        std::memory_order_acq_rel)) {
  }
  if (n <= 0) return 0;
  if (n - 1 == 0) {
    // 3.13: withdrawing the last request drops one not yet delivered.
    h_->state.fetch_and(~detail::TaskHeader::kCancelPending, std::memory_order_acq_rel);
  }
  return n - 1;
}

void TaskRef::check_outcome() const {
  if (!h_) throw InvalidStateError("weft::TaskRef: empty handle");
  std::uint32_t s = state();
  if (!(s & detail::TaskHeader::kComplete)) throw InvalidStateError("Result is not set.");
  if (!(s & detail::TaskHeader::kRetrieved))
    h_->state.fetch_or(detail::TaskHeader::kRetrieved, std::memory_order_relaxed);
  if (s & detail::TaskHeader::kOutcomeCancelled) {
    if (detail::task_error(h_)) std::rethrow_exception(detail::task_error(h_));
    throw CancelledError(detail::cancel_message(h_));
  }
  if (s & detail::TaskHeader::kOutcomeError) std::rethrow_exception(detail::task_error(h_));
}

std::exception_ptr TaskRef::exception() const {
  if (!h_) throw InvalidStateError("weft::TaskRef: empty handle");
  std::uint32_t s = state();
  if (!(s & detail::TaskHeader::kComplete)) throw InvalidStateError("Exception is not set.");
  if (s & detail::TaskHeader::kOutcomeCancelled) check_outcome();
  if (s & detail::TaskHeader::kOutcomeError) {
    h_->state.fetch_or(detail::TaskHeader::kRetrieved, std::memory_order_relaxed);
    return detail::task_error(h_);
  }
  return nullptr;
}

std::string TaskRef::name() const {
  if (!h_) return {};
  detail::TaskExtras* e = detail::find_extras(h_);
  if (e && !e->name.empty()) return e->name;
  return "Task-" + std::to_string(h_->id);
}

TaskRef current_task() {
  if (detail::Worker::current() == nullptr) detail::throw_no_loop("current_task");
  return TaskRef(detail::tl_current_task);
}

std::vector<TaskRef> all_tasks() {
  detail::Worker* w = detail::Worker::current();
  if (w == nullptr) detail::throw_no_loop("all_tasks");
  return w->rt().all_tasks();
}

}  // namespace weft
