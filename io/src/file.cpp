// file.cpp - File and the file-system operations (weft/io/file.hpp).
//
// Path-taking operations are Tasks: the path is copied into the task's frame
// (a std::string local) before the first suspension, so the kernel reads a
// NUL-terminated copy that lives until the CQE whatever the caller does with
// its string_view afterwards.
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <weft/io/file.hpp>

namespace weft::io {

Task<File> File::open(std::string_view path, int flags, mode_t mode, OpTimeout timeout) {
  std::string p(path);
  int fd = co_await detail::Op<detail::OpenPrep>(
      detail::OpenPrep{p.c_str(), flags | O_CLOEXEC, mode}, timeout);
  co_return File(fd);
}

Task<void> File::write_all_at(ConstBuffer buf, std::uint64_t offset, OpTimeout timeout) const {
  auto deadline = detail::Deadline::after(timeout, "write");
  while (buf.size > 0) {
    std::size_t n = co_await write_at(buf, offset, deadline.remaining());
    if (n == 0) throw std::system_error(EIO, std::system_category(), "write: wrote 0 bytes");
    buf = buf + n;
    offset += n;
  }
}

Task<void> File::read_exact_at(MutableBuffer buf, std::uint64_t offset, OpTimeout timeout) const {
  auto deadline = detail::Deadline::after(timeout, "read");
  std::size_t want = buf.size;
  while (buf.size > 0) {
    std::size_t n = co_await read_at(buf, offset, deadline.remaining());
    if (n == 0)
      throw EndOfFileError("read_exact_at: file ended after " + std::to_string(want - buf.size) +
                           " of " + std::to_string(want) + " bytes");
    buf = buf + n;
    offset += n;
  }
}

Task<struct statx> stat(std::string_view path, bool follow_symlinks, unsigned mask,
                        OpTimeout timeout) {
  std::string p(path);
  int flags = AT_STATX_SYNC_AS_STAT | (follow_symlinks ? 0 : AT_SYMLINK_NOFOLLOW);
  co_return co_await detail::Op<detail::StatxPrep>(
      detail::StatxPrep{AT_FDCWD, p.c_str(), flags, mask}, timeout);
}

Task<void> unlink(std::string_view path, OpTimeout timeout) {
  std::string p(path);
  co_await detail::Op<detail::UnlinkPrep>(detail::UnlinkPrep{p.c_str(), 0}, timeout);
}

Task<void> rmdir(std::string_view path, OpTimeout timeout) {
  std::string p(path);
  co_await detail::Op<detail::UnlinkPrep>(detail::UnlinkPrep{p.c_str(), AT_REMOVEDIR}, timeout);
}

Task<void> rename(std::string_view from, std::string_view to, OpTimeout timeout) {
  std::string f(from), t(to);
  co_await detail::Op<detail::RenamePrep>(detail::RenamePrep{f.c_str(), t.c_str()}, timeout);
}

Task<void> mkdir(std::string_view path, mode_t mode, OpTimeout timeout) {
  std::string p(path);
  co_await detail::Op<detail::MkdirPrep>(detail::MkdirPrep{p.c_str(), mode}, timeout);
}

Task<std::string> read_file(std::string_view path, OpTimeout timeout) {
  auto deadline = detail::Deadline::after(timeout, "read_file");
  File f = co_await File::open(path, O_RDONLY, 0, deadline.remaining());
  struct statx st = co_await f.stat(STATX_SIZE, deadline.remaining());
  // The size is a hint (files in /proc report 0, files may grow): read until
  // a read returns 0, growing the string as needed.
  std::string out;
  out.resize(st.stx_size > 0 ? st.stx_size + 1 : 4096);
  std::size_t have = 0;
  for (;;) {
    if (have == out.size()) out.resize(out.size() * 2);
    std::size_t n =
        co_await f.read_at({out.data() + have, out.size() - have}, have, deadline.remaining());
    if (n == 0) break;
    have += n;
  }
  out.resize(have);
  co_await f.close(deadline.remaining());
  co_return out;
}

Task<void> write_file(std::string_view path, ConstBuffer data, OpTimeout timeout) {
  auto deadline = detail::Deadline::after(timeout, "write_file");
  File f = co_await File::open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644, deadline.remaining());
  co_await f.write_all_at(data, 0, deadline.remaining());
  co_await f.close(deadline.remaining());
}

}  // namespace weft::io
