// executor_slot.hpp - where a runtime keeps its executors' state (the
// default executor, executors it replaced, the helper thread of
// shutdown_default_executor). Created lazily by executor.cpp; the runtime
// only holds the slot and calls shutdown_executors() in its end sequence.
#pragma once

#include <atomic>

namespace weft::detail {

struct ExecutorState;  // executor.cpp

struct ExecutorSlot {
  std::atomic<ExecutorState*> state{nullptr};
  ExecutorSlot() = default;
  ExecutorSlot(const ExecutorSlot&) = delete;
  ExecutorSlot& operator=(const ExecutorSlot&) = delete;
  ~ExecutorSlot();  // executor.cpp
};

class RuntimeImpl;
/// §R 118's "shut down the default executor": refuses new default-executor
/// jobs and waits for the pools' threads. Idempotent. Foreign thread only.
void shutdown_executors(RuntimeImpl& rt);

}  // namespace weft::detail
