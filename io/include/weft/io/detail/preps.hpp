// weft/io/detail/preps.hpp - the Prep structs of weft::io's operations (see
// weft/io/op.hpp for the contract). Public only because the operations'
// return types name them; not an API of its own.
#pragma once

#include <fcntl.h>
#include <liburing.h>
#include <linux/stat.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <weft/io/address.hpp>
#include <weft/io/buffer.hpp>
#include <weft/io/detail/uring_compat.hpp>

namespace weft::io {

/// What UdpSocket::recv_from returns: the datagram's size (truncated to the
/// buffer if it was larger; `truncated` says so) and its sender.
struct RecvFromResult {
  std::size_t size = 0;
  SocketAddress from;
  bool truncated = false;
};

}  // namespace weft::io

namespace weft::io::detail {

// Offset meaning "the file's current position" (IORING_OP_READ/WRITE, 5.6+).
inline constexpr std::uint64_t kCurrentPosition = ~std::uint64_t{0};

struct RecvPrep {
  static constexpr const char* kName = "recv";
  int fd;
  MutableBuffer buf;
  int flags;
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_recv(sqe, fd, buf.data, buf.size, flags); }
  std::size_t result(int res) noexcept { return static_cast<std::size_t>(res); }
};

struct SendPrep {
  static constexpr const char* kName = "send";
  int fd;
  ConstBuffer buf;
  int flags;
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_send(sqe, fd, buf.data, buf.size, flags); }
  std::size_t result(int res) noexcept { return static_cast<std::size_t>(res); }
};

/// IORING_OP_SEND_ZC (awaited through NotifOp: two CQEs). Asks the kernel
/// to report whether it copied after all (IORING_SEND_ZC_REPORT_USAGE).
struct SendZcPrep {
  static constexpr const char* kName = "send_zc";
  int fd;
  ConstBuffer buf;
  int flags;
  void prep(io_uring_sqe* sqe) noexcept {
    io_uring_prep_send_zc(sqe, fd, buf.data, buf.size, flags, IORING_SEND_ZC_REPORT_USAGE);
  }
  std::size_t result(int res) noexcept { return static_cast<std::size_t>(res); }
};

/// sendmsg with an iovec array (StreamSocket::sendv).
struct SendvPrep {
  static constexpr const char* kName = "sendmsg";
  int fd;
  const iovec* iov;
  std::size_t iovcnt;
  msghdr msg{};
  void prep(io_uring_sqe* sqe) noexcept {
    msg = {};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = iovcnt;
    io_uring_prep_sendmsg(sqe, fd, &msg, MSG_NOSIGNAL);
  }
  std::size_t result(int res) noexcept { return static_cast<std::size_t>(res); }
};

struct ReadPrep {
  static constexpr const char* kName = "read";
  int fd;
  MutableBuffer buf;
  std::uint64_t offset;
  void prep(io_uring_sqe* sqe) noexcept {
    io_uring_prep_read(sqe, fd, buf.data, static_cast<unsigned>(buf.size), offset);
  }
  std::size_t result(int res) noexcept { return static_cast<std::size_t>(res); }
};

struct WritePrep {
  static constexpr const char* kName = "write";
  int fd;
  ConstBuffer buf;
  std::uint64_t offset;
  void prep(io_uring_sqe* sqe) noexcept {
    io_uring_prep_write(sqe, fd, buf.data, static_cast<unsigned>(buf.size), offset);
  }
  std::size_t result(int res) noexcept { return static_cast<std::size_t>(res); }
};

/// IORING_OP_READ_FIXED / WRITE_FIXED: `buf` lies inside registered buffer
/// `index` (checked by check_fixed before the op is built).
struct ReadFixedPrep {
  static constexpr const char* kName = "read_fixed";
  int fd;
  MutableBuffer buf;
  std::uint64_t offset;
  unsigned index;
  void prep(io_uring_sqe* sqe) noexcept {
    io_uring_prep_read_fixed(sqe, fd, buf.data, static_cast<unsigned>(buf.size), offset,
                             static_cast<int>(index));
  }
  std::size_t result(int res) noexcept { return static_cast<std::size_t>(res); }
};

struct WriteFixedPrep {
  static constexpr const char* kName = "write_fixed";
  int fd;
  ConstBuffer buf;
  std::uint64_t offset;
  unsigned index;
  void prep(io_uring_sqe* sqe) noexcept {
    io_uring_prep_write_fixed(sqe, fd, buf.data, static_cast<unsigned>(buf.size), offset,
                              static_cast<int>(index));
  }
  std::size_t result(int res) noexcept { return static_cast<std::size_t>(res); }
};

/// Throws ValueError unless [data, data + size) lies inside registered
/// buffer `index` of the calling worker's runtime (naming what is wrong: no
/// registered buffers, index out of range, memory outside the buffer,
/// length past its end); RuntimeError outside a worker thread.
void check_fixed(const void* data, std::size_t size, unsigned index, const char* op);

struct ReadvPrep {
  static constexpr const char* kName = "readv";
  int fd;
  const iovec* iov;
  unsigned iovcnt;
  std::uint64_t offset;
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_readv(sqe, fd, iov, iovcnt, offset); }
  std::size_t result(int res) noexcept { return static_cast<std::size_t>(res); }
};

struct WritevPrep {
  static constexpr const char* kName = "writev";
  int fd;
  const iovec* iov;
  unsigned iovcnt;
  std::uint64_t offset;
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_writev(sqe, fd, iov, iovcnt, offset); }
  std::size_t result(int res) noexcept { return static_cast<std::size_t>(res); }
};

/// A one-shot poll: completes when `fd` has one of the `mask` events
/// (signalfds, pidfds: descriptors read with plain non-blocking system
/// calls on the worker, not on a kernel io-wq thread). Returns the events.
struct PollPrep {
  static constexpr const char* kName = "poll";
  int fd;
  unsigned mask;
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_poll_add(sqe, fd, mask); }
  unsigned result(int res) noexcept { return static_cast<unsigned>(res); }
};

template <bool kDataOnly>
struct FsyncPrep {
  static constexpr const char* kName = kDataOnly ? "fdatasync" : "fsync";
  int fd;
  void prep(io_uring_sqe* sqe) noexcept {
    io_uring_prep_fsync(sqe, fd, kDataOnly ? IORING_FSYNC_DATASYNC : 0);
  }
  void result(int) noexcept {}
};

struct StatxPrep {
  static constexpr const char* kName = "statx";
  int dirfd;
  const char* path;  // "" with AT_EMPTY_PATH for an open file
  int flags;
  unsigned mask;
  struct statx buf {};
  void prep(io_uring_sqe* sqe) noexcept {
    io_uring_prep_statx(sqe, dirfd, path, flags, mask, &buf);
  }
  struct statx result(int) noexcept {
    return buf;
  }
};

struct ClosePrep {
  static constexpr const char* kName = "close";
  int fd;
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_close(sqe, fd); }
  void result(int) noexcept {}
};

struct OpenPrep {
  static constexpr const char* kName = "open";
  const char* path;
  int flags;
  mode_t mode;
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_openat(sqe, AT_FDCWD, path, flags, mode); }
  int result(int res) noexcept { return res; }
};

struct UnlinkPrep {
  static constexpr const char* kName = "unlink";
  const char* path;
  int flags;  // AT_REMOVEDIR for rmdir
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_unlinkat(sqe, AT_FDCWD, path, flags); }
  void result(int) noexcept {}
};

struct RenamePrep {
  static constexpr const char* kName = "rename";
  const char* from;
  const char* to;
  void prep(io_uring_sqe* sqe) noexcept {
    io_uring_prep_renameat(sqe, AT_FDCWD, from, AT_FDCWD, to, 0);
  }
  void result(int) noexcept {}
};

struct MkdirPrep {
  static constexpr const char* kName = "mkdir";
  const char* path;
  mode_t mode;
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_mkdirat(sqe, AT_FDCWD, path, mode); }
  void result(int) noexcept {}
};

struct ConnectPrep {
  static constexpr const char* kName = "connect";
  int fd;
  SocketAddress addr;
  void prep(io_uring_sqe* sqe) noexcept {
    io_uring_prep_connect(sqe, fd, addr.data(), addr.size());
  }
  void result(int) noexcept {}
};

struct ShutdownPrep {
  static constexpr const char* kName = "shutdown";
  int fd;
  int how;
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_shutdown(sqe, fd, how); }
  void result(int) noexcept {}
};

struct SendToPrep {
  static constexpr const char* kName = "sendto";
  int fd;
  ConstBuffer buf;
  SocketAddress to;
  iovec iov{};
  msghdr msg{};
  void prep(io_uring_sqe* sqe) noexcept {
    iov.iov_base = const_cast<void*>(buf.data);
    iov.iov_len = buf.size;
    msg = {};
    msg.msg_name = to.data();
    msg.msg_namelen = to.size();
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    io_uring_prep_sendmsg(sqe, fd, &msg, MSG_NOSIGNAL);
  }
  std::size_t result(int res) noexcept { return static_cast<std::size_t>(res); }
};

struct RecvFromPrep {
  static constexpr const char* kName = "recvfrom";
  int fd;
  MutableBuffer buf;
  SocketAddress from{};
  iovec iov{};
  msghdr msg{};
  void prep(io_uring_sqe* sqe) noexcept {
    iov.iov_base = buf.data;
    iov.iov_len = buf.size;
    msg = {};
    msg.msg_name = from.data();
    msg.msg_namelen = SocketAddress::capacity();
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    io_uring_prep_recvmsg(sqe, fd, &msg, 0);
  }
  RecvFromResult result(int res) noexcept {
    *from.size_ptr() = msg.msg_namelen;
    return {static_cast<std::size_t>(res), from, (msg.msg_flags & MSG_TRUNC) != 0};
  }
};

}  // namespace weft::io::detail
