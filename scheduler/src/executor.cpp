// executor.cpp - a runtime's default executor (asyncio's
// loop._default_executor): created lazily, replaceable, shut down once.
//
// The state sits behind RuntimeImpl::executors, created on first use with a
// CAS; a mutex guards it (run_in_executor(nullptr, ...) takes it once per
// call, next to the pool's own lock per job). Executors replaced by
// set_default_executor are shut down without waiting and kept, so that the
// last reference to a pool is never dropped on a worker thread (its
// destructor joins threads); the runtime's end sequence waits for them all.
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
#include <weft/executor.hpp>

#include "worker.hpp"

namespace weft::detail {

struct ExecutorState {
  std::mutex mu;
  std::shared_ptr<Executor> current;
  std::vector<std::shared_ptr<Executor>> retired;  // replaced, shut down, not yet joined
  std::vector<std::thread> helpers;                // shutdown_default_executor's waits
  bool shut = false;
  // Set with `shut`, before anyone waits for the executors' threads; shared
  // with wrap_future's jobs, which may outlive the runtime on an executor
  // whose shutdown does not wait.
  std::shared_ptr<std::atomic<bool>> stopping = std::make_shared<std::atomic<bool>>(false);
};

ExecutorSlot::~ExecutorSlot() { delete state.load(std::memory_order_acquire); }

namespace {

ExecutorState& state_of(RuntimeImpl& rt) {
  ExecutorState* s = rt.executors.state.load(std::memory_order_acquire);
  if (s) return *s;
  auto* fresh = new ExecutorState;
  // acq_rel: publishes the new state, or acquires the one another thread won with.
  if (rt.executors.state.compare_exchange_strong(s, fresh, std::memory_order_acq_rel))
    return *fresh;
  delete fresh;
  return *s;
}

RuntimeImpl& current_impl() {
  Runtime* rt = current_runtime();
  if (rt == nullptr) throw RuntimeError("no running event loop");
  return rt->impl();
}

}  // namespace

std::shared_ptr<Executor> current_default_executor() {
  return default_executor(current_impl().facade);
}

std::shared_ptr<const std::atomic<bool>> current_default_executor_stopping() {
  ExecutorState& s = state_of(current_impl());
  std::lock_guard<std::mutex> g(s.mu);
  return s.stopping;
}

void shutdown_executors(RuntimeImpl& rt) {
  ExecutorState& s = state_of(rt);
  std::shared_ptr<Executor> cur;
  std::vector<std::shared_ptr<Executor>> retired;
  std::vector<std::thread> helpers;
  {
    std::lock_guard<std::mutex> g(s.mu);
    s.shut = true;
    // relaxed: see WaitStdFuture (executor.hpp); the flag publishes no data.
    s.stopping->store(true, std::memory_order_relaxed);
    cur = std::move(s.current);
    retired = std::move(s.retired);
    helpers = std::move(s.helpers);
  }
  if (cur) cur->shutdown(true, false);
  for (auto& r : retired) r->shutdown(true, false);
  for (auto& h : helpers) h.join();
}

}  // namespace weft::detail

namespace weft {

std::shared_ptr<Executor> default_executor(Runtime& rt) {
  detail::ExecutorState& s = detail::state_of(rt.impl());
  std::lock_guard<std::mutex> g(s.mu);
  if (s.shut) throw RuntimeError("Executor shutdown has been called");
  if (!s.current) {
    const RuntimeOptions& o = rt.options();
    BlockingPoolOptions bo;
    bo.max_threads = o.blocking_threads;
    bo.keep_alive = o.blocking_keep_alive;
    bo.idle_spin = o.blocking_idle_spin;
    s.current = std::make_shared<BlockingPool>(std::move(bo));
  }
  return s.current;
}

void set_default_executor(Runtime& rt, std::shared_ptr<Executor> ex) {
  if (!ex) throw std::invalid_argument("weft::set_default_executor: null executor");
  detail::ExecutorState& s = detail::state_of(rt.impl());
  std::shared_ptr<Executor> old;
  {
    std::lock_guard<std::mutex> g(s.mu);
    if (s.shut) throw RuntimeError("Executor shutdown has been called");
    old = std::exchange(s.current, std::move(ex));
    if (old) s.retired.push_back(old);
  }
  if (old) old->shutdown(false, false);
}

void set_default_executor(std::shared_ptr<Executor> ex) {
  set_default_executor(detail::current_impl().facade, std::move(ex));
}

Future<void> shutdown_default_executor(Runtime& rt) {
  detail::ExecutorState& s = detail::state_of(rt.impl());
  Promise<void> p(&rt);
  Future<void> f = p.get_future();
  std::lock_guard<std::mutex> g(s.mu);
  s.shut = true;
  s.stopping->store(true, std::memory_order_relaxed);  // relaxed: as in shutdown_executors
  std::shared_ptr<Executor> cur = std::move(s.current);
  if (!cur) {
    p.set_result();
    return f;
  }
  s.retired.push_back(cur);
  // Waiting for the threads blocks, so it happens on a helper thread (asyncio
  // does the same); the runtime's end sequence joins the helper.
  s.helpers.emplace_back([cur, p = std::move(p)]() mutable {
    cur->shutdown(true, false);
    p.set_result();
  });
  return f;
}

Future<void> shutdown_default_executor() {
  return shutdown_default_executor(detail::current_impl().facade);
}

}  // namespace weft
