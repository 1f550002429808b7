// local_queue.hpp - a worker's bounded run queue: the owner pushes and pops,
// other workers steal half of it in one batch.
//
// # Layout
// A ring of kCapacity task pointers with one tail and two heads. The tail is
// written only by the owner. The two heads are packed into one 64-bit word so
// that they change together with one CAS:
//   real  - the next task to be taken by anyone;
//   steal - equal to real, except while a thief is copying a claimed batch
//           out of the ring: then it marks where that batch starts.
// The owner may push only while tail - steal < kCapacity, so a slot that a
// thief is still copying is never overwritten. Only one steal may be in
// progress at a time (a thief that sees steal != real backs off); this keeps
// the protocol to three CASes and is what Tokio's queue does too.
//
// # Why not Chase-Lev
// Chase-Lev pops LIFO from the owner's end; asyncio users expect tasks to
// start in spawn order on a worker, so the owner pops FIFO from the head and
// keeps message-passing locality through the separate LIFO slot (worker.hpp).
//
// # ABA
// Heads are 32-bit counters that wrap; a thief holds a claimed range for a
// short copy only, and the owner cannot push more than kCapacity entries past
// `steal` meanwhile, so a wrapped counter cannot be confused with a fresh one.
//
// # Memory orders
// The slots are relaxed atomics: what publishes them is the release store of
// the tail (owner push) read with acquire by a thief, and the acq_rel CAS on
// the heads that hands a claimed range from one side to the other.
#pragma once

#include <atomic>
#include <cstdint>
#include <weft/detail/task_header.hpp>

namespace weft::detail {

class LocalQueue {
 public:
  /// 1024. Tokio uses 256; measured here (bench/run, 2 workers), 1,000
  /// runnable tasks per runtime (the ping_pong and yield_many workloads) then
  /// overflow into the mutex-guarded injection queue on every few pushes, and
  /// 1024 took ping_pong from 65-70 to 33-37 ns per hop and yield_many from
  /// ~20 to ~12 ns per yield. A steal still copies at most half, 512 pointers.
  static constexpr std::uint32_t kCapacity = 1024;
  static constexpr std::uint32_t kMask = kCapacity - 1;

  /// Owner only. Pushes at the tail; returns false when full (the caller
  /// then moves half to the injection queue with take_half_for_overflow).
  bool push(TaskHeader* t) noexcept {
    std::uint32_t tail = tail_.load(std::memory_order_relaxed);
    std::uint64_t heads = heads_.load(std::memory_order_acquire);
    if (tail - steal_of(heads) >= kCapacity) return false;
    slots_[tail & kMask].store(t, std::memory_order_relaxed);
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  /// Owner only. When the queue is full and no steal is in progress, claims
  /// the older half and links it into a list (returned head, *last = tail of
  /// the list, count = kCapacity/2). Returns null if a steal is in progress
  /// (the caller then overflows just the one task).
  TaskHeader* take_half_for_overflow(TaskHeader** last) noexcept {
    std::uint64_t heads = heads_.load(std::memory_order_acquire);
    std::uint32_t steal = steal_of(heads), real = real_of(heads);
    if (steal != real) return nullptr;
    std::uint32_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - real < kCapacity) return nullptr;  // a pop freed room meanwhile
    const std::uint32_t n = kCapacity / 2;
    std::uint64_t next = pack(real + n, real + n);
    if (!heads_.compare_exchange_strong(heads, next, std::memory_order_acq_rel,
                                        std::memory_order_acquire))
      return nullptr;
    TaskHeader* first = slots_[real & kMask].load(std::memory_order_relaxed);
    TaskHeader* prev = first;
    for (std::uint32_t i = 1; i < n; ++i) {
      TaskHeader* t = slots_[(real + i) & kMask].load(std::memory_order_relaxed);
      prev->next = t;
      prev = t;
    }
    prev->next = nullptr;
    *last = prev;
    return first;
  }

  /// Owner only. Pops the oldest task, or null.
  TaskHeader* pop() noexcept {
    std::uint64_t heads = heads_.load(std::memory_order_acquire);
    for (;;) {
      std::uint32_t steal = steal_of(heads), real = real_of(heads);
      std::uint32_t tail = tail_.load(std::memory_order_relaxed);
      if (real == tail) return nullptr;
      std::uint32_t next_real = real + 1;
      std::uint64_t next = steal == real ? pack(next_real, next_real) : pack(steal, next_real);
      if (heads_.compare_exchange_weak(heads, next, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
        return slots_[real & kMask].load(std::memory_order_relaxed);
    }
  }

  /// Thief. Moves up to half of this queue (at most `max` tasks) into `dst`
  /// (which must be the thief's own, empty-enough queue) and returns one of
  /// them to run at once; null if there was nothing to steal or another
  /// steal is in progress. *count receives the number taken, including the
  /// returned one.
  ///
  /// With `left_lone` given, a lone task (the queue holds exactly one) is
  /// taken only if `lone_head` points to its index; otherwise nothing is
  /// taken, *left_lone is set and *lone_at receives its index. The check
  /// uses the same reads that size the claim, so a thief cannot take a lone
  /// task it only saw as one of two in passing (the owner popping one and
  /// pushing the next between two reads).
  TaskHeader* steal_into(LocalQueue& dst, std::uint32_t max, std::uint32_t* count,
                         bool* left_lone = nullptr, std::uint32_t* lone_at = nullptr,
                         const std::uint32_t* lone_head = nullptr) noexcept {
    std::uint32_t dst_tail = dst.tail_.load(std::memory_order_relaxed);
    std::uint64_t dst_heads = dst.heads_.load(std::memory_order_acquire);
    std::uint32_t room = kCapacity - (dst_tail - steal_of(dst_heads));
    if (room < 1) return nullptr;

    // Claim a range.
    std::uint64_t heads = heads_.load(std::memory_order_acquire);
    std::uint32_t n;
    std::uint32_t first;
    for (;;) {
      std::uint32_t steal = steal_of(heads), real = real_of(heads);
      if (steal != real) return nullptr;  // another thief is copying
      std::uint32_t tail = tail_.load(std::memory_order_acquire);
      n = tail - real;
      if (n == 1 && left_lone != nullptr && (lone_head == nullptr || *lone_head != real)) {
        *left_lone = true;
        *lone_at = real;
        return nullptr;
      }
      n -= n / 2;
      if (n > max) n = max;
      if (n > room) n = room;
      if (n == 0) return nullptr;
      std::uint64_t next = pack(steal, real + n);
      if (heads_.compare_exchange_weak(heads, next, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        first = real;
        break;
      }
    }
    // Copy it out. The last one is returned to run now; the rest go to dst.
    for (std::uint32_t i = 0; i + 1 < n; ++i) {
      TaskHeader* t = slots_[(first + i) & kMask].load(std::memory_order_relaxed);
      dst.slots_[(dst_tail + i) & kMask].store(t, std::memory_order_relaxed);
    }
    TaskHeader* ret = slots_[(first + n - 1) & kMask].load(std::memory_order_relaxed);
    // Release the claim: steal catches up with real (the owner may have
    // popped meanwhile, moving real).
    heads = heads_.load(std::memory_order_acquire);
    for (;;) {
      std::uint32_t real = real_of(heads);
      std::uint64_t next = pack(real, real);
      if (heads_.compare_exchange_weak(heads, next, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
        break;
    }
    if (n > 1) dst.tail_.store(dst_tail + n - 1, std::memory_order_release);
    *count = n;
    return ret;
  }

  /// Any thread; approximate unless called by the owner.
  std::uint32_t size() const noexcept {
    std::uint64_t heads = heads_.load(std::memory_order_acquire);
    std::uint32_t tail = tail_.load(std::memory_order_acquire);
    return tail - real_of(heads);
  }
  bool empty() const noexcept { return size() == 0; }

 private:
  static std::uint32_t steal_of(std::uint64_t h) noexcept {
    return static_cast<std::uint32_t>(h >> 32);
  }
  static std::uint32_t real_of(std::uint64_t h) noexcept { return static_cast<std::uint32_t>(h); }
  static std::uint64_t pack(std::uint32_t steal, std::uint32_t real) noexcept {
    return (static_cast<std::uint64_t>(steal) << 32) | real;
  }

  alignas(64) std::atomic<std::uint64_t> heads_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  alignas(64) std::atomic<TaskHeader*> slots_[kCapacity] = {};
};

}  // namespace weft::detail
