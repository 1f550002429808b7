// inject_queue.hpp - the runtime's global injection queue.
//
// Takes tasks spawned or woken from threads outside the runtime, and the
// overflow of workers' local queues. Any thread pushes; workers pop in
// batches. A mutex guards an intrusive FIFO (TaskHeader::next), as Tokio's
// inject queue does: pushes from outside are not the per-task hot path of a
// worker, overflow moves 128 tasks per lock, and a batched pop amortises the
// lock over many tasks. `len_` lets workers test for emptiness without the
// lock, which is what they do on almost every tick.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <weft/detail/task_header.hpp>

namespace weft::detail {

class InjectQueue {
 public:
  void push(TaskHeader* t) noexcept { push_list(t, t, 1); }

  /// Appends the list first..last (linked through next) of n tasks.
  void push_list(TaskHeader* first, TaskHeader* last, std::uint32_t n) noexcept {
    last->next = nullptr;
    std::lock_guard<std::mutex> g(mu_);
    if (tail_) {
      tail_->next = first;
    } else {
      head_ = first;
    }
    tail_ = last;
    len_.store(len_.load(std::memory_order_relaxed) + n, std::memory_order_release);
  }

  /// Pops up to `max` tasks as a list; returns the head (null if empty) and
  /// the count in *n.
  TaskHeader* pop_batch(std::uint32_t max, std::uint32_t* n) noexcept {
    *n = 0;
    if (len_.load(std::memory_order_acquire) == 0) return nullptr;
    std::lock_guard<std::mutex> g(mu_);
    TaskHeader* first = head_;
    if (!first) return nullptr;
    TaskHeader* last = first;
    std::uint32_t k = 1;
    while (k < max && last->next) {
      last = last->next;
      ++k;
    }
    head_ = last->next;
    if (!head_) tail_ = nullptr;
    last->next = nullptr;
    len_.store(len_.load(std::memory_order_relaxed) - k, std::memory_order_release);
    *n = k;
    return first;
  }

  bool empty() const noexcept { return len_.load(std::memory_order_acquire) == 0; }
  std::uint64_t size() const noexcept { return len_.load(std::memory_order_acquire); }

 private:
  std::mutex mu_;
  TaskHeader* head_ = nullptr;
  TaskHeader* tail_ = nullptr;
  std::atomic<std::uint64_t> len_{0};
};

}  // namespace weft::detail
