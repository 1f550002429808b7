// weft/io/file.hpp - File (an open file on the ring) and file-system
// operations: open, read/write at an offset or at the current position,
// readv/writev, fsync/fdatasync, statx, close, unlink, rmdir, rename,
// mkdir, read_file/write_file.
//
//   auto f = co_await weft::io::File::open("data.bin", O_RDONLY);
//   std::vector<char> buf(4096);
//   std::size_t n = co_await f.read_at(buf, 0);
//   std::string all = co_await weft::io::read_file("config.txt");
//
// Every call is an io_uring operation on the current worker's ring (no
// thread pool): IORING_OP_OPENAT, READ, WRITE, READ_FIXED, WRITE_FIXED,
// READV, WRITEV, FSYNC, STATX, CLOSE, UNLINKAT, RENAMEAT, MKDIRAT.
// Regular-file reads the page cache cannot serve are run by the kernel's
// io-wq workers; they do not block the loop.
//
// A File's read, write or sync queued while earlier ones are out at the
// kernel reaches it when the step of the task that issued it ends, not with
// the rest of the worker's tick (socket operations wait for the tick's single
// io_uring_enter): the device works while the loop runs other tasks, so a
// read held back for the tick is time the device sits idle. Reads the page
// cache serves complete as they are submitted and stay batched.
// RuntimeOptions::eager_file_submit says what that measured and turns it off.
//
// Timeouts on file operations are linked timeouts like any other, but a
// regular-file read or write that the kernel has already started cannot be
// interrupted: the timeout then takes effect only when the operation
// finishes, and its result is delivered (no bytes lost) rather than a
// TimeoutError. Cancelling behaves the same way.
//
// Paths (std::string_view) are copied into the operation's frame when the
// call's task starts, which for `co_await io::open(path)` is at once; keep
// the text alive until then if you store the Task to await later.
//
// Closing: `co_await f.close()` reports errors (on some file systems a
// write error surfaces only at close). The destructor of an open File calls
// close(2), as Socket's does (weft/io/socket.hpp explains why not the
// ring); errors are ignored there. close(2) of a local file does not sleep;
// on a network file system it may flush, so await close() on those.
//
// Threads: a File is not synchronised; operations at explicit offsets may be
// in flight from several tasks at once (pread/pwrite semantics), operations
// at the current position should not. Await inside a weft task.
#pragma once

#include <fcntl.h>
#include <linux/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <weft/io/buffer.hpp>
#include <weft/io/detail/fd_owner.hpp>
#include <weft/io/detail/preps.hpp>
#include <weft/io/fixed_buffer.hpp>
#include <weft/io/op.hpp>
#include <weft/task.hpp>

namespace weft::io {

class File : public detail::FdOwner {
 public:
  File() noexcept = default;
  /// Takes ownership of `fd`. fd(), is_open(), release() and close() (through
  /// the ring) come from detail::FdOwner; the destructor calls close(2).
  explicit File(int fd) noexcept : FdOwner(fd) {}

  /// openat(AT_FDCWD, path, flags | O_CLOEXEC, mode) on the ring. Throws
  /// std::system_error("open") (ENOENT, EACCES, ...).
  static Task<File> open(std::string_view path, int flags = O_RDONLY, mode_t mode = 0644,
                         OpTimeout timeout = std::nullopt);

  /// Reads up to buf.size bytes at the current position (advancing it);
  /// returns how many, 0 at end of file.
  detail::Op<detail::ReadPrep> read(MutableBuffer buf, OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::ReadPrep>(detail::ReadPrep{fd_, buf, detail::kCurrentPosition},
                                        timeout, detail::Submit::with_step);
  }
  /// Reads up to buf.size bytes at `offset` (the position is unchanged).
  detail::Op<detail::ReadPrep> read_at(MutableBuffer buf, std::uint64_t offset,
                                       OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::ReadPrep>(detail::ReadPrep{fd_, buf, offset}, timeout,
                                        detail::Submit::with_step);
  }
  /// Writes up to buf.size bytes at the current position (O_APPEND: at the
  /// end); returns how many were written.
  detail::Op<detail::WritePrep> write(ConstBuffer buf, OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::WritePrep>(detail::WritePrep{fd_, buf, detail::kCurrentPosition},
                                         timeout, detail::Submit::with_step);
  }
  detail::Op<detail::WritePrep> write_at(ConstBuffer buf, std::uint64_t offset,
                                         OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::WritePrep>(detail::WritePrep{fd_, buf, offset}, timeout,
                                         detail::Submit::with_step);
  }
  /// Scatter/gather forms. The iovec array must stay valid until the
  /// co_await returns.
  detail::Op<detail::ReadvPrep> readv(std::span<const iovec> bufs,
                                      OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::ReadvPrep>(
        detail::ReadvPrep{fd_, bufs.data(), static_cast<unsigned>(bufs.size()),
                          detail::kCurrentPosition},
        timeout, detail::Submit::with_step);
  }
  detail::Op<detail::ReadvPrep> readv_at(std::span<const iovec> bufs, std::uint64_t offset,
                                         OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::ReadvPrep>(
        detail::ReadvPrep{fd_, bufs.data(), static_cast<unsigned>(bufs.size()), offset}, timeout,
        detail::Submit::with_step);
  }
  detail::Op<detail::WritevPrep> writev(std::span<const iovec> bufs,
                                        OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::WritevPrep>(
        detail::WritevPrep{fd_, bufs.data(), static_cast<unsigned>(bufs.size()),
                           detail::kCurrentPosition},
        timeout, detail::Submit::with_step);
  }
  detail::Op<detail::WritevPrep> writev_at(std::span<const iovec> bufs, std::uint64_t offset,
                                           OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::WritevPrep>(
        detail::WritevPrep{fd_, bufs.data(), static_cast<unsigned>(bufs.size()), offset}, timeout,
        detail::Submit::with_step);
  }
  /// Registered-buffer forms (IORING_OP_READ_FIXED / WRITE_FIXED; see
  /// weft/io/fixed_buffer.hpp and RuntimeOptions::fixed_buffers): like
  /// read_at / write_at, but the memory is one of the runtime's registered
  /// buffers, which spares the kernel pinning and mapping it on every call.
  /// The first form takes the whole FixedBuffer; the second any range inside
  /// registered buffer `buf_index` (`fb.first(n), fb.index()`). Throws, at
  /// the call and before anything reaches the kernel, ValueError if the
  /// runtime has no registered buffers, if buf_index is out of range, if
  /// `buf` does not start inside that buffer or runs past its end (the
  /// message says which); RuntimeError outside a worker thread. Then as
  /// read_at / write_at. Threads: inside a task of the runtime whose pool
  /// the buffer came from.
  detail::Op<detail::ReadFixedPrep> read_fixed_at(const FixedBuffer& buf, std::uint64_t offset,
                                                  OpTimeout timeout = std::nullopt) const {
    return read_fixed_at(MutableBuffer(buf), buf.index(), offset, timeout);
  }
  detail::Op<detail::ReadFixedPrep> read_fixed_at(MutableBuffer buf, unsigned buf_index,
                                                  std::uint64_t offset,
                                                  OpTimeout timeout = std::nullopt) const {
    detail::check_fixed(buf.data, buf.size, buf_index, "read_fixed_at");
    return detail::Op<detail::ReadFixedPrep>(detail::ReadFixedPrep{fd_, buf, offset, buf_index},
                                             timeout, detail::Submit::with_step);
  }
  detail::Op<detail::WriteFixedPrep> write_fixed_at(const FixedBuffer& buf, std::uint64_t offset,
                                                    OpTimeout timeout = std::nullopt) const {
    return write_fixed_at(ConstBuffer(MutableBuffer(buf)), buf.index(), offset, timeout);
  }
  detail::Op<detail::WriteFixedPrep> write_fixed_at(ConstBuffer buf, unsigned buf_index,
                                                    std::uint64_t offset,
                                                    OpTimeout timeout = std::nullopt) const {
    detail::check_fixed(buf.data, buf.size, buf_index, "write_fixed_at");
    return detail::Op<detail::WriteFixedPrep>(detail::WriteFixedPrep{fd_, buf, offset, buf_index},
                                              timeout, detail::Submit::with_step);
  }
  /// Writes all of buf at `offset` (several writes if the kernel takes less).
  Task<void> write_all_at(ConstBuffer buf, std::uint64_t offset,
                          OpTimeout timeout = std::nullopt) const;
  /// Fills buf from `offset`; EndOfFileError if the file ends first.
  Task<void> read_exact_at(MutableBuffer buf, std::uint64_t offset,
                           OpTimeout timeout = std::nullopt) const;

  detail::Op<detail::FsyncPrep<false>> fsync(OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::FsyncPrep<false>>(detail::FsyncPrep<false>{fd_}, timeout,
                                                detail::Submit::with_step);
  }
  detail::Op<detail::FsyncPrep<true>> fdatasync(OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::FsyncPrep<true>>(detail::FsyncPrep<true>{fd_}, timeout,
                                               detail::Submit::with_step);
  }
  /// statx of the open file (AT_EMPTY_PATH), STATX_BASIC_STATS by default.
  detail::Op<detail::StatxPrep> stat(unsigned mask = STATX_BASIC_STATS,
                                     OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::StatxPrep>(
        detail::StatxPrep{fd_, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, mask}, timeout);
  }
};

/// statx(path). `follow_symlinks` false: AT_SYMLINK_NOFOLLOW.
Task<struct statx> stat(std::string_view path, bool follow_symlinks = true,
                        unsigned mask = STATX_BASIC_STATS, OpTimeout timeout = std::nullopt);
/// unlinkat(path, 0). std::system_error("unlink").
Task<void> unlink(std::string_view path, OpTimeout timeout = std::nullopt);
/// unlinkat(path, AT_REMOVEDIR). std::system_error("unlink").
Task<void> rmdir(std::string_view path, OpTimeout timeout = std::nullopt);
/// renameat(from, to). std::system_error("rename").
Task<void> rename(std::string_view from, std::string_view to, OpTimeout timeout = std::nullopt);
/// mkdirat(path, mode). std::system_error("mkdir") (EEXIST, ...).
Task<void> mkdir(std::string_view path, mode_t mode = 0777, OpTimeout timeout = std::nullopt);
/// The whole file (open, statx for the size, reads until end of file,
/// close). Timeout: a deadline for the whole call.
Task<std::string> read_file(std::string_view path, OpTimeout timeout = std::nullopt);
/// Creates or truncates `path` (mode 0644 before umask) and writes `data`.
Task<void> write_file(std::string_view path, ConstBuffer data, OpTimeout timeout = std::nullopt);

}  // namespace weft::io
