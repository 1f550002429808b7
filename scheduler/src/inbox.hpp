// inbox.hpp - work for one loop's thread that arrives from other threads:
// call_soon_threadsafe callbacks, and cancel requests for timers and ring
// operations owned by that loop.
//
// A multi-producer, single-consumer intrusive stack: producers push with one
// CAS (lock-free, never blocks the sender); the owner takes the whole stack
// with one exchange and reverses it, so items run in the order they were
// pushed. Nodes live in their senders' memory (callback nodes, or the
// operation state in a suspended frame that cannot resume before the owner
// has handled the item).
#pragma once

#include <atomic>
#include <weft/detail/task_header.hpp>

namespace weft::detail {

class Inbox {
 public:
  /// Any thread. Returns true if the inbox was empty before (a hint only).
  bool push(InboxItem* item) noexcept {
    InboxItem* head = head_.load(std::memory_order_relaxed);
    do {
      item->next = head;
    } while (!head_.compare_exchange_weak(head, item, std::memory_order_release,
                                          std::memory_order_relaxed));
    return head == nullptr;
  }
  /// Owner. Takes everything, oldest first.
  InboxItem* take_all() noexcept {
    if (head_.load(std::memory_order_relaxed) == nullptr) return nullptr;
    InboxItem* list = head_.exchange(nullptr, std::memory_order_acquire);
    InboxItem* rev = nullptr;
    while (list) {
      InboxItem* n = list->next;
      list->next = rev;
      rev = list;
      list = n;
    }
    return rev;
  }
  bool empty() const noexcept { return head_.load(std::memory_order_acquire) == nullptr; }

 private:
  std::atomic<InboxItem*> head_{nullptr};
};

}  // namespace weft::detail
