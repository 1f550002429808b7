// weft/io/detail/fd_owner.hpp - the descriptor ownership File and Socket share.
#pragma once

#include <unistd.h>

#include <utility>
#include <weft/io/detail/preps.hpp>
#include <weft/io/op.hpp>

namespace weft::io::detail {

/// Owns one descriptor (-1 for none): move-only; the destructor and
/// move-assignment close it with close(2), which does not sleep for sockets
/// and local files (see weft/io/socket.hpp). Not synchronised.
class FdOwner {
 public:
  FdOwner() noexcept = default;
  /// Takes ownership of `fd` (-1 for none).
  explicit FdOwner(int fd) noexcept : fd_(fd) {}
  FdOwner(FdOwner&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  FdOwner& operator=(FdOwner&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  FdOwner(const FdOwner&) = delete;
  FdOwner& operator=(const FdOwner&) = delete;
  ~FdOwner() { reset(); }

  int fd() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  /// Gives up ownership: returns the descriptor and leaves this closed.
  int release() noexcept { return std::exchange(fd_, -1); }
  /// Closes through the ring. Closed (fd() == -1) from the call on, whatever
  /// the outcome. Throws std::system_error("close").
  Op<ClosePrep> close(OpTimeout timeout = std::nullopt) {
    return Op<ClosePrep>(ClosePrep{std::exchange(fd_, -1)}, timeout);
  }

 protected:
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

}  // namespace weft::io::detail
