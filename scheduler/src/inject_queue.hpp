// inject_queue.hpp - the runtime's global injection queue.
//
// Takes tasks spawned or woken from threads outside the runtime, and the
// overflow of workers' local queues. Any thread pushes; workers pop in
// batches.
//
// Pushes never wait: a producer links its task (or a whole overflow batch)
// onto a lock-free stack with one CAS on `pushed_`. A thread outside the
// runtime spawning tasks in a loop used to take a mutex per spawn, the same
// one workers hold while they pop; on 2 cores it then slept in futex_wait
// behind a worker (about 14% of the spawning thread's time in spawn_remote,
// a mutex acquisition and a release per task besides).
//
// Consumers (workers only) serialise on `mu_`: the one holding it takes the
// whole stack with one exchange, reverses it into the FIFO `head_`..`tail_`
// behind what is already there, and pops its batch from the front. So tasks
// leave in the order they were pushed (a batch pushed with push_list keeps
// its order: it is linked reversed onto the stack, and the reversal restores
// it). Reading what a producer linked is safe: the CAS that published it is
// a release, the exchange that took it an acquire.
//
// `queued_` counts the tasks in the FIFO (written under mu_, read without);
// `empty()` looks at it and at the stack, without the lock, which is what
// workers do on almost every tick.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <weft/detail/task_header.hpp>

namespace weft::detail {

class InjectQueue {
 public:
  /// Any thread. Never blocks.
  void push(TaskHeader* t) noexcept { link(t, t); }

  /// Any thread. Appends the list first..last (linked through next), in
  /// order.
  void push_list(TaskHeader* first, TaskHeader* last) noexcept {
    if (first == last) {
      push(first);
      return;
    }
    // Reverse the chain: the consumer reverses the stack, which puts it back.
    last->next = nullptr;
    TaskHeader* rev = nullptr;
    for (TaskHeader* t = first; t != nullptr;) {
      TaskHeader* next = t->next;
      t->next = rev;
      rev = t;
      t = next;
    }
    link(last, first);  // last is now the chain's head, first its end
  }

  /// Workers. Pops at most `max` tasks as a list; returns the head (null if
  /// empty) and the count in *n. `share` > 0: take at most
  /// queued / share + 1 of them (a worker's fair share of the backlog).
  TaskHeader* pop_batch(std::uint32_t max, std::uint32_t share, std::uint32_t* n) noexcept {
    *n = 0;
    if (empty()) return nullptr;
    std::lock_guard<std::mutex> g(mu_);
    std::uint64_t queued = queued_.load(std::memory_order_relaxed);
    if (TaskHeader* s = pushed_.exchange(nullptr, std::memory_order_acquire)) {
      // Newest first: reverse onto the FIFO's tail.
      TaskHeader* rev = nullptr;
      TaskHeader* rev_tail = s;
      std::uint64_t k = 0;
      while (s) {
        TaskHeader* next = s->next;
        s->next = rev;
        rev = s;
        s = next;
        ++k;
      }
      if (tail_) {
        tail_->next = rev;
      } else {
        head_ = rev;
      }
      tail_ = rev_tail;
      queued += k;
    }
    TaskHeader* first = head_;
    if (!first) return nullptr;
    std::uint64_t want = share > 0 ? queued / share + 1 : queued;
    if (want > max) want = max;
    if (want == 0) want = 1;
    TaskHeader* last = first;
    std::uint32_t k = 1;
    while (k < want && last->next) {
      last = last->next;
      ++k;
    }
    head_ = last->next;
    if (!head_) tail_ = nullptr;
    last->next = nullptr;
    queued_.store(queued - k, std::memory_order_release);
    *n = k;
    return first;
  }

  /// Any thread.
  bool empty() const noexcept {
    return pushed_.load(std::memory_order_acquire) == nullptr &&
           queued_.load(std::memory_order_acquire) == 0;
  }
  /// Any thread. Approximate: tasks pushed since the last pop count as one.
  std::uint64_t size() const noexcept {
    return queued_.load(std::memory_order_acquire) +
           (pushed_.load(std::memory_order_acquire) != nullptr ? 1 : 0);
  }

 private:
  // Links the chain head..end (end->next is overwritten) onto the stack.
  // The successful CAS is seq_cst: it is the producer's half of the
  // store-load pairing with a parking worker (worker.hpp), so a producer
  // that reads the parked state with seq_cst loads after it needs no fence
  // of its own (RuntimeImpl::notify_parked_after_seq_cst).
  void link(TaskHeader* head, TaskHeader* end) noexcept {
    TaskHeader* top = pushed_.load(std::memory_order_relaxed);
    do {
      end->next = top;
    } while (!pushed_.compare_exchange_weak(top, head, std::memory_order_seq_cst,
                                            std::memory_order_relaxed));
  }

  alignas(64) std::atomic<TaskHeader*> pushed_{nullptr};  // newest first
  alignas(64) std::mutex mu_;
  TaskHeader* head_ = nullptr;  // under mu_: the FIFO, oldest first
  TaskHeader* tail_ = nullptr;
  std::atomic<std::uint64_t> queued_{0};  // tasks in head_..tail_
};

}  // namespace weft::detail
