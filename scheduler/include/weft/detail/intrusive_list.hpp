// weft/detail/intrusive_list.hpp - a FIFO of nodes linked through their own
// `next` and `prev` members, with O(1) removal from anywhere: the waiter
// lists of the sync primitives and of a listener's accept queue.
//
// Threads: not thread-safe; the owner guards it (a primitive's mutex).
// Nothing here throws or allocates.
#pragma once

namespace weft::detail {

/// T has members `T* next` and `T* prev`, null while T is in no list.
template <class T>
class IntrusiveList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  T* front() const noexcept { return head_; }
  void push_back(T* n) noexcept {
    n->next = nullptr;
    n->prev = tail_;
    if (tail_) {
      tail_->next = n;
    } else {
      head_ = n;
    }
    tail_ = n;
  }
  T* pop_front() noexcept {
    T* n = head_;
    if (n) remove(n);
    return n;
  }
  /// `n` must be in this list.
  void remove(T* n) noexcept {
    if (n->prev) {
      n->prev->next = n->next;
    } else {
      head_ = n->next;
    }
    if (n->next) {
      n->next->prev = n->prev;
    } else {
      tail_ = n->prev;
    }
    n->next = n->prev = nullptr;
  }
  /// Takes every node (a chain through `next`, oldest first), leaving the
  /// list empty. The nodes keep their links.
  T* take_all() noexcept {
    T* h = head_;
    head_ = tail_ = nullptr;
    return h;
  }

 private:
  T* head_ = nullptr;
  T* tail_ = nullptr;
};

}  // namespace weft::detail
