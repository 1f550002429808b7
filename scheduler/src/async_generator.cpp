// async_generator.cpp - closing AsyncGenerators: aclose, the finalizer for
// abandoned generators, and run()'s shutdown_asyncgens step.
//
// # The registry
// A generator is registered when it first runs (asyncio's firstiter hook)
// and unregistered when its body ends or its frame is destroyed. Entries are
// per runtime (the runtime of the task that started it), in one global list
// under a spin lock: a start and an end per generator, never held across a
// resume. An entry is either owned (an AsyncGenerator object holds the frame)
// or an orphan (the object was destroyed while the frame sat at a co_yield;
// the registry holds the frame until a finalizer task or shutdown closes it).
//
// # Finalization
// Destroying a generator suspended at a co_yield on a worker makes it an
// orphan and spawns a finalizer task that claims it and runs aclose(). If
// that task never runs (shutdown cancels it before its first step), the
// orphan stays registered and Runtime::shutdown() closes it: after the last
// tasks finished it calls finalize_async_generators(), which closes every
// generator of that runtime still suspended at a co_yield, orphans and owned
// ones alike, each in a task it waits for, and destroys the orphans' frames.
#include <atomic>
#include <vector>
#include <weft/async_generator.hpp>
#include <weft/join_handle.hpp>
#include <weft/runtime.hpp>

#include "asyncgen_hooks.hpp"
#include "worker.hpp"

namespace weft::detail {

namespace {

std::atomic<bool> g_lock{false};
GenPromiseBase* g_head = nullptr;

struct RegistryGuard {
  RegistryGuard() noexcept {
    while (g_lock.exchange(true, std::memory_order_acquire)) {
      while (g_lock.load(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
  }
  ~RegistryGuard() { g_lock.store(false, std::memory_order_release); }
};

void unlink_locked(GenPromiseBase* p) noexcept {
  if (!p->registered) return;
  if (p->reg_prev)
    p->reg_prev->reg_next = p->reg_next;
  else
    g_head = p->reg_next;
  if (p->reg_next) p->reg_next->reg_prev = p->reg_prev;
  p->reg_prev = p->reg_next = nullptr;
  p->registered = false;
}

/// Claims an orphan for the finalizer task; false if shutdown took it.
bool claim_orphan(GenPromiseBase* p) noexcept {
  RegistryGuard g;
  if (!p->registered) return false;
  unlink_locked(p);
  return true;
}

Task<void> finalize_orphan(GenPromiseBase* p) {
  if (!claim_orphan(p)) co_return;
  std::exception_ptr error;
  try {
    co_await gen_close(p);
  } catch (...) {
    error = std::current_exception();
  }
  p->self.destroy();
  if (error) std::rethrow_exception(error);
}

Task<void> close_at_shutdown(GenPromiseBase* p, bool destroy) {
  std::exception_ptr error;
  try {
    co_await gen_close(p);
  } catch (...) {
    error = std::current_exception();
  }
  if (destroy) p->self.destroy();
  if (error) std::rethrow_exception(error);
}

}  // namespace

void throw_gen_running() {
  throw RuntimeError("weft::AsyncGenerator: asynchronous generator is already running");
}

void gen_register(GenPromiseBase* p) noexcept {
  p->runtime = current_runtime();
  RegistryGuard g;
  p->reg_prev = nullptr;
  p->reg_next = g_head;
  if (g_head) g_head->reg_prev = p;
  g_head = p;
  p->registered = true;
}

void gen_unregister(GenPromiseBase* p) noexcept {
  RegistryGuard g;
  unlink_locked(p);
}

Task<void> gen_close(GenPromiseBase* p) {
  if (p->running)
    throw RuntimeError("weft::AsyncGenerator::aclose: asynchronous generator is already running");
  if (!p->started || p->finished) {
    p->finished = true;
    gen_unregister(p);
    co_return;
  }
  p->closing = true;
  co_await GenResumeAwaiter{p};
  if (!p->finished) {
    // Given up on: its frame is destroyed (not closed again) with its owner.
    gen_unregister(p);
    throw RuntimeError("async generator ignored GeneratorExit");
  }
  if (std::exception_ptr e = std::exchange(p->error, nullptr)) {
    try {
      std::rethrow_exception(e);
    } catch (const GeneratorExit&) {
      // The expected way out.
    }
  }
}

void gen_abandon(GenPromiseBase* p) noexcept {
  if (current_runtime() != nullptr && current_runtime() == p->runtime) {
    {
      RegistryGuard g;
      p->orphan = true;
    }
    try {
      spawn(finalize_orphan(p), SpawnOptions{"weft-asyncgen-finalizer"});
      return;
    } catch (...) {
      // Out of memory: fall through and destroy it without its async cleanup.
      if (!claim_orphan(p)) return;
    }
  }
  gen_unregister(p);
  p->self.destroy();
}

void finalize_async_generators(Runtime& rt) {
  std::vector<std::pair<GenPromiseBase*, bool>> todo;
  {
    RegistryGuard g;
    for (GenPromiseBase* p = g_head; p;) {
      GenPromiseBase* next = p->reg_next;
      if (p->runtime == &rt) {
        if (p->orphan) {
          unlink_locked(p);
          todo.emplace_back(p, true);
        } else if (p->at_yield && !p->finished && !p->running && !p->closing) {
          todo.emplace_back(p, false);
        }
      }
      p = next;
    }
  }
  std::vector<TaskRef> closers;
  for (auto [p, destroy] : todo) {
    try {
      closers.push_back(
          rt.spawn(close_at_shutdown(p, destroy), SpawnOptions{"weft-asyncgen-close"}));
    } catch (...) {
      if (destroy) p->self.destroy();
    }
  }
  for (auto& t : closers) {
    block_until_done(t.header());
    std::uint32_t s = t.header()->state.fetch_or(TaskHeader::kRetrieved, std::memory_order_acq_rel);
    if (s & TaskHeader::kOutcomeError) {
      rt.impl().report({"an error occurred during closing of an asynchronous generator",
                        task_error(t.header()), t});
    }
  }
}

}  // namespace weft::detail
