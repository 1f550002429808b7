// timer_heap.hpp - a loop's timers: a binary min-heap of TimerNode pointers
// ordered by (deadline, sequence number).
//
// The sequence number is taken when a timer is armed, so timers with equal
// deadlines fire in the order they were scheduled: weft's documented, stricter
// guarantee than CPython's unstable heapq (ASYNCIO_SEMANTICS §A 4). Each node
// records its index, so a cancelled sleep leaves the heap at once in O(log n)
// (its node lives in a frame that is about to resume). Only the owning loop's
// thread touches the heap.
#pragma once

#include <cstdint>
#include <vector>
#include <weft/loop.hpp>

namespace weft::detail {

class TimerHeap {
 public:
  void push(TimerNode* n) {
    n->seq = next_seq_++;
    n->heap_index = static_cast<std::int32_t>(heap_.size());
    heap_.push_back(n);
    sift_up(heap_.size() - 1);
  }
  TimerNode* top() const noexcept { return heap_.empty() ? nullptr : heap_.front(); }
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  /// Removes n (which must be in this heap).
  void remove(TimerNode* n) noexcept {
    std::size_t i = static_cast<std::size_t>(n->heap_index);
    std::size_t last = heap_.size() - 1;
    if (i != last) {
      heap_[i] = heap_[last];
      heap_[i]->heap_index = static_cast<std::int32_t>(i);
      heap_.pop_back();
      if (!sift_up(i)) sift_down(i);
    } else {
      heap_.pop_back();
    }
    n->heap_index = -1;
  }
  TimerNode* pop() noexcept {
    TimerNode* n = heap_.front();
    remove(n);
    return n;
  }

 private:
  static bool less(const TimerNode* a, const TimerNode* b) noexcept {
    return a->deadline_ns < b->deadline_ns || (a->deadline_ns == b->deadline_ns && a->seq < b->seq);
  }
  void place(std::size_t i, TimerNode* n) noexcept {
    heap_[i] = n;
    n->heap_index = static_cast<std::int32_t>(i);
  }
  bool sift_up(std::size_t i) noexcept {
    TimerNode* n = heap_[i];
    std::size_t start = i;
    while (i > 0) {
      std::size_t parent = (i - 1) / 2;
      if (!less(n, heap_[parent])) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, n);
    return i != start;
  }
  void sift_down(std::size_t i) noexcept {
    TimerNode* n = heap_[i];
    std::size_t size = heap_.size();
    for (;;) {
      std::size_t c = 2 * i + 1;
      if (c >= size) break;
      if (c + 1 < size && less(heap_[c + 1], heap_[c])) ++c;
      if (!less(heap_[c], n)) break;
      place(i, heap_[c]);
      i = c;
    }
    place(i, n);
  }

  std::vector<TimerNode*> heap_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace weft::detail
