// weft/io/streams.hpp - asyncio's streams: StreamReader and StreamWriter over a
// connected socket or a pipe, on the current worker's io_uring ring.
//
// # How it differs from asyncio's design, and why
// asyncio feeds a StreamReader from a protocol: the loop reads whatever
// arrives and pushes it into the reader's buffer, pausing the transport once
// the buffer holds more than 2 * limit bytes. weft's reader *pulls*: a read
// that lacks data issues one read of at most `limit` bytes (64 KiB by default)
// on the ring and waits for it. No task and no loop callback runs per
// connection besides the reader's own, nothing is read that nobody asked for,
// and the buffer can never hold more than a read asked for plus one chunk: a
// peer that sends without end cannot make a reader hold more than 2 * limit
// bytes (§Q 115's pause point), except for read(-1) and readexactly(n), which
// asyncio does not bound by the limit either.
//
// A reader made without a connection (StreamReader(limit)) is fed by hand with
// feed_data / feed_eof / set_exception, as asyncio's tests do; reads then wait
// for the feeder. Both kinds behave the same way for every method (§Q
// 108-114).
//
// The writer is asyncio's: write() never blocks; it appends to a buffer that
// is sent with one send per batch, so a handler that writes several responses
// before it next awaits has them sent in one system call. The write that finds
// nothing in flight has the send submitted on its worker's ring when its
// task's step ends (at once outside a task's step); the send's completion
// sends what was written meanwhile, until the buffer is empty. No task runs
// for it (asyncio's transport has none either). drain() waits only
// while more than the high-water mark (64 KiB) is buffered, until the sends
// have brought it down to the low-water mark (16 KiB). Errors of a send
// (reset, broken pipe) are raised by the next drain(), and later writes are
// dropped, as asyncio's transports do. A runtime that stops with a send in
// flight cancels it: the rest is dropped and the writer is broken
// (ConnectionResetError).
//
// # Threads
// Reader and writer are handles (cheap to copy; the copies share one state).
// Any task on any worker may use them. A reader serves one waiting read at a
// time: a second concurrent read that has to wait raises RuntimeError, as
// asyncio does; on a connected reader any other read raises while one waits
// on the socket (the kernel is filling the buffer behind it). The
// writer may be used by several tasks at once (its buffer is guarded by a
// mutex held for a copy only, never across a wait). Reads and drain() must be
// awaited inside a weft task; write() must be called on a worker thread (a
// weft task, or a loop callback: it may submit the send); close() and
// is_closing() may be called from any thread.
//
// # Closing
// writer.close() flushes what is buffered, then shuts the socket down in both
// directions (so a read in flight on the same connection ends with EOF), and
// wait_closed() completes once that happened. The descriptor itself is closed
// when the last reader/writer handle sharing it goes away.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <weft/async_generator.hpp>
#include <weft/errors.hpp>
#include <weft/future.hpp>
#include <weft/task.hpp>

namespace weft::io {

/// asyncio.IncompleteReadError: EOF came before readexactly(n) got n bytes, or
/// before readuntil found its separator. partial() is what was read (and is
/// no longer in the buffer); expected() is n, or empty for readuntil.
class IncompleteReadError : public weft::Error {
 public:
  IncompleteReadError(std::string partial, std::optional<std::size_t> expected);
  const std::string& partial() const noexcept { return partial_; }
  std::optional<std::size_t> expected() const noexcept { return expected_; }

 private:
  std::string partial_;
  std::optional<std::size_t> expected_;
};

/// asyncio.LimitOverrunError: readuntil/readline would exceed the reader's
/// limit. consumed() is how many bytes a caller would have to consume to get
/// past the point reached; the buffer is left as it was.
class LimitOverrunError : public weft::Error {
 public:
  LimitOverrunError(const std::string& message, std::size_t consumed)
      : weft::Error(message), consumed_(consumed) {}
  std::size_t consumed() const noexcept { return consumed_; }

 private:
  std::size_t consumed_;
};

namespace detail {
class StreamConn;
struct ReaderState;
struct WriterState;
}  // namespace detail

class StreamWriter;

/// asyncio.StreamReader. See the file comment for pull versus fed readers.
class StreamReader {
 public:
  static constexpr std::size_t kDefaultLimit = 64 * 1024;

  /// A reader fed by hand (feed_data/feed_eof/set_exception). Throws
  /// ValueError if limit <= 0 (§Q 108). Any thread.
  explicit StreamReader(std::ptrdiff_t limit = static_cast<std::ptrdiff_t>(kDefaultLimit));
  /// A reader that reads `conn` itself. Throws ValueError if limit <= 0.
  StreamReader(std::shared_ptr<detail::StreamConn> conn, std::ptrdiff_t limit);

  /// The limit given at construction.
  std::size_t limit() const noexcept;

  /// Appends bytes for the readers and wakes a waiting read. RuntimeError on a
  /// reader bound to a connection (its bytes come from the kernel) or after
  /// feed_eof(). Any thread.
  void feed_data(std::string_view data);
  /// Marks the end of the data; a waiting read wakes. Any thread.
  void feed_eof();
  /// Fails the waiting read and every later read with `e` (§Q 114). Any thread.
  void set_exception(std::exception_ptr e);
  /// The exception set by set_exception or by a failed read, or null.
  std::exception_ptr exception() const;
  /// True once EOF was seen and the buffer is empty (§Q 109). Any thread.
  bool at_eof() const;

  /// Up to n available bytes, waiting for at least one; n < 0 reads to EOF;
  /// n == 0 returns "" at once; "" at EOF (§Q 108). Throws the reader's
  /// exception, RuntimeError if another read is waiting, std::system_error
  /// for a failed read (the errno and "read"), CancelledError.
  Task<std::string> read(std::ptrdiff_t n = -1);
  /// Bytes through the next '\n'; at EOF the partial last line, then "".
  /// ValueError if the line is longer than limit (the line, or the buffer if
  /// no '\n' is in it, is dropped) (§Q 109-110). Other errors as read().
  Task<std::string> readline();
  /// Bytes through the next `sep`. ValueError for an empty sep;
  /// IncompleteReadError at EOF (buffer emptied); LimitOverrunError past the
  /// limit (buffer untouched) (§Q 111-112). Other errors as read().
  Task<std::string> readuntil(std::string sep = "\n");
  /// Exactly n bytes. ValueError for n < 0; IncompleteReadError if EOF comes
  /// first (buffer emptied) (§Q 113). Other errors as read().
  Task<std::string> readexactly(std::ptrdiff_t n);
  /// asyncio's `async for line in reader`: the lines readline() returns, each
  /// with its '\n' (the last one without, if the data does not end with
  /// one), until EOF (§Q 109):
  ///
  ///   auto lines = reader.lines();
  ///   while (auto line = co_await lines.next()) use(*line);
  ///
  /// Each next() is one readline(), so it raises what readline() raises
  /// (ValueError for a line over the limit, the reader's exception, ...) and
  /// the generator is finished afterwards. It reads nothing ahead: closing it
  /// early (aclose(), or dropping it) leaves every line it did not yield in
  /// the reader. The generator holds a copy of this handle, so it may outlive
  /// this object. It counts as a read: while its next() waits, another read
  /// raises RuntimeError. lines() itself throws only std::bad_alloc; next() must
  /// be awaited inside a weft task. Any thread may call lines().
  AsyncGenerator<std::string> lines() const;

  /// The shared state (for the writer and the server helpers).
  const std::shared_ptr<detail::ReaderState>& state() const noexcept { return s_; }

 private:
  std::shared_ptr<detail::ReaderState> s_;
};

/// asyncio.StreamWriter over a connected socket or the write end of a pipe.
class StreamWriter {
 public:
  static constexpr std::size_t kDefaultHighWater = 64 * 1024;

  /// A writer for `conn`; `reader` (may be empty) is the reader of the same
  /// connection, as asyncio's writer keeps it.
  StreamWriter(std::shared_ptr<detail::StreamConn> conn,
               std::shared_ptr<detail::ReaderState> reader);

  /// Queues bytes to send; never blocks. Dropped after close() or after the
  /// connection failed (the next drain() raises). Throws RuntimeError off a
  /// worker thread when it would have to start the send (the bytes stay
  /// buffered for the next write() on a worker), std::bad_alloc. A send that
  /// cannot be submitted (no free SQE) breaks the writer: drain() raises it.
  void write(std::string_view data);
  /// Waits while more than the high-water mark is buffered (§Q 115). Throws
  /// the error that broke the connection (std::system_error), or
  /// ConnectionResetError-like std::system_error(ECONNRESET) after close();
  /// CancelledError. Inside a weft task only.
  Task<void> drain();
  /// Sends what is buffered, then half-closes (shutdown SHUT_WR): the peer
  /// reads EOF, this side can still read. Throws std::system_error if the
  /// shutdown fails, RuntimeError on a pipe (can_write_eof() is false).
  void write_eof();
  /// True for sockets (write_eof supported).
  bool can_write_eof() const noexcept;
  /// Flushes, then shuts the connection down (file comment). Any thread;
  /// idempotent; never throws.
  void close() noexcept;
  /// True once close() was called (§Q 116).
  bool is_closing() const noexcept;
  /// Completes once close() has flushed and shut the connection down. Throws
  /// CancelledError. Inside a weft task only.
  Task<void> wait_closed();
  /// Bytes buffered and not yet handed to the kernel.
  std::size_t buffered() const;
  /// asyncio's set_write_buffer_limits: drain() waits above `high` until at
  /// most `low` is left. ValueError if low > high.
  void set_write_buffer_limits(std::size_t high, std::size_t low);
  /// The connection's descriptor (for socket options), -1 once closed.
  int fd() const noexcept;

 private:
  std::shared_ptr<detail::WriterState> s_;
};

/// Wraps a connected stream socket (TCP, Unix) or pipe in a reader/writer
/// pair sharing it; takes ownership of `fd` (closed when both handles are
/// gone). Throws ValueError for a negative fd or limit <= 0. Any thread.
std::pair<StreamReader, StreamWriter> open_stream(
    int fd, std::ptrdiff_t limit = static_cast<std::ptrdiff_t>(StreamReader::kDefaultLimit));
/// A reader for the read end of a pipe or socket only (takes ownership of fd).
StreamReader open_reader(
    int fd, std::ptrdiff_t limit = static_cast<std::ptrdiff_t>(StreamReader::kDefaultLimit));
/// A writer for the write end of a pipe or socket only (takes ownership of fd).
StreamWriter open_writer(int fd);

}  // namespace weft::io
