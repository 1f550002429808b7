// streams.cpp - StreamReader (pulling from its connection, or fed by hand) and
// StreamWriter (a chain of sends per burst of writes, with no task). See
// weft/io/streams.hpp.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>
#include <weft/io/detail/preps.hpp>
#include <weft/io/errors.hpp>
#include <weft/io/op.hpp>
#include <weft/io/streams.hpp>
#include <weft/join_handle.hpp>

#include "settle.hpp"
#include "sigpipe.hpp"

namespace weft::io {

namespace {

using detail::settle;

std::string incomplete_message(std::size_t got, std::optional<std::size_t> expected) {
  std::string e = expected ? std::to_string(*expected) : std::string("undefined");
  return std::to_string(got) + " bytes read on a total of " + e + " expected bytes";
}

}  // namespace

IncompleteReadError::IncompleteReadError(std::string partial, std::optional<std::size_t> expected)
    : weft::Error(incomplete_message(partial.size(), expected)),
      partial_(std::move(partial)),
      expected_(expected) {}

namespace detail {

/// The descriptor a reader and a writer share; closed with the last handle.
class StreamConn {
 public:
  explicit StreamConn(int fd) : fd_(fd) {
    struct stat st {};
    sock_ = ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
  }
  StreamConn(const StreamConn&) = delete;
  StreamConn& operator=(const StreamConn&) = delete;
  ~StreamConn() { close_fd(); }
  int fd() const noexcept { return fd_.load(std::memory_order_acquire); }
  bool is_socket() const noexcept { return sock_; }
  /// Shuts a socket down in both directions (a read in flight ends with
  /// EOF); closes a pipe end. Never throws.
  void shut() noexcept {
    if (sock_) {
      int fd = fd_.load(std::memory_order_acquire);
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
    } else {
      close_fd();
    }
  }
  void close_fd() noexcept {
    int fd = fd_.exchange(-1, std::memory_order_acq_rel);
    if (fd >= 0) ::close(fd);
  }

 private:
  std::atomic<int> fd_;
  bool sock_ = false;
};

/// A byte buffer with a moving start, so consuming from the front is O(1).
class ByteBuffer {
 public:
  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return begin_ == end_; }
  std::string_view view() const noexcept { return {data_.get() + begin_, size()}; }
  std::string take(std::size_t n) {
    n = std::min(n, size());
    std::string out(data_.get() + begin_, n);
    consume(n);
    return out;
  }
  void consume(std::size_t n) noexcept {
    begin_ += std::min(n, size());
    if (begin_ == end_) begin_ = end_ = 0;
  }
  void clear() noexcept { begin_ = end_ = 0; }
  /// Room for n more bytes at the end; the pointer stays valid until the
  /// next call that changes the buffer.
  char* prepare(std::size_t n) {
    if (cap_ - end_ < n) {
      std::size_t used = size();
      if (begin_ > 0 && cap_ - used >= n && used <= cap_ / 2) {
        std::memmove(data_.get(), data_.get() + begin_, used);
      } else {
        std::size_t ncap = std::max(cap_ * 2, used + n);
        std::unique_ptr<char[]> d(new char[ncap]);
        if (used) std::memcpy(d.get(), data_.get() + begin_, used);
        data_ = std::move(d);
        cap_ = ncap;
      }
      begin_ = 0;
      end_ = used;
    }
    return data_.get() + end_;
  }
  void commit(std::size_t n) noexcept { end_ += n; }
  void append(std::string_view s) {
    std::memcpy(prepare(s.size()), s.data(), s.size());
    commit(s.size());
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t cap_ = 0, begin_ = 0, end_ = 0;
};

struct ReaderState {
  std::size_t limit;
  std::shared_ptr<StreamConn> conn;  // null: fed by hand
  mutable std::mutex m;
  ByteBuffer buf;
  bool eof = false;
  bool waiting = false;   // a read waits for data (one at a time, §Q 114)
  std::uint64_t gen = 0;  // bumped by every feed, EOF and error
  std::exception_ptr exc;
  std::optional<Promise<void>> waiter;  // fed readers: the waiting read

  /// Raises RuntimeError if a read of this connected reader waits for its
  /// read to complete: the kernel is writing into the buffer's tail, so no
  /// other read may take from (and so move) the buffer meanwhile. (A fed
  /// reader's buffer only changes under `m`.) Call with `m` held.
  void check_not_pulling(const char* fn) const {
    if (conn && waiting) throw_busy(fn);
  }
  [[noreturn]] static void throw_busy(const char* fn) {
    throw weft::RuntimeError(std::string(fn) +
                             "() called while another coroutine is already waiting for "
                             "incoming data");
  }

  /// Wakes a fed reader's waiting read; call with `m` held in `g`.
  void wake(std::unique_lock<std::mutex>& g) {
    std::optional<Promise<void>> w = std::move(waiter);
    waiter.reset();
    g.unlock();
    if (w) {
      try {
        w->set_result();
      } catch (...) {
        // Cancelled meanwhile: its read is already unwinding.
      }
    }
  }
};

struct WriterState;

// The writer's send in flight: a request with no task behind it (see
// flush_done), armed on the ring of the worker that started the burst.
struct SendReq : weft::detail::IoDetached {
  WriterState* s = nullptr;
};

// write()'s request to start a burst when the writing step ends.
struct StartReq : weft::detail::InboxItem {
  WriterState* s = nullptr;
};

struct WriterState {
  WriterState() noexcept;
  std::shared_ptr<StreamConn> conn;
  std::shared_ptr<ReaderState> reader;  // asyncio's writer keeps its reader
  mutable std::mutex m;
  std::string pending;       // written, not yet taken for a send
  std::string batch;         // taken for the send in flight; [sent, size) still to go
  std::size_t sent = 0;      // bytes of `batch` the kernel took
  bool flushing = false;     // a send is in flight (a burst of writes is being sent)
  bool closing = false;      // close() called
  bool closed = false;       // shut down after the last flush
  bool eof_wanted = false;   // write_eof() while flushing
  std::exception_ptr error;  // what broke the connection
  std::size_t high = StreamWriter::kDefaultHighWater;
  std::size_t low = StreamWriter::kDefaultHighWater / 4;
  std::vector<Promise<void>> drainers;
  std::vector<Promise<void>> closers;
  SendReq req;
  // write()'s request to start the burst when the writing step ends, so the
  // step's writes go out in one send (weft::detail::io_after_step).
  StartReq start;
  // Set while flushing: the request in the kernel keeps the state (its
  // buffer, the descriptor) alive until its last CQE, whatever the handles do.
  std::shared_ptr<WriterState> self;

  std::size_t inflight() const noexcept { return batch.size() - sent; }
};

namespace {

// Waits for more data, EOF or an error than the caller saw (it read `seen`
// = s->gen under the lock): reads the connection (pull reader) or waits for a
// feeder (fed reader). Throws RuntimeError if another read waits already
// (§Q 114).
Task<void> wait_for_data(ReaderState* s, const char* fn, std::uint64_t seen) {
  std::unique_lock g(s->m);
  if (s->waiting) ReaderState::throw_busy(fn);
  if (s->gen != seen || s->eof || s->exc) co_return;  // something came meanwhile
  s->waiting = true;
  if (!s->conn) {
    Promise<void> p;
    Future<void> f = p.get_future();
    s->waiter.emplace(std::move(p));
    g.unlock();
    try {
      co_await f;
    } catch (...) {
      std::lock_guard g2(s->m);
      s->waiting = false;
      s->waiter.reset();
      throw;
    }
    std::lock_guard g2(s->m);
    s->waiting = false;
    co_return;
  }
  // Pull: one read of at most `limit` bytes into the buffer's tail. Nobody
  // else touches the buffer while `waiting` is set (other reads raise, and a
  // connected reader takes no feed_data), so the kernel may write there.
  const std::size_t chunk = std::min<std::size_t>(s->limit, 1u << 20);
  char* p = s->buf.prepare(chunk);
  const int fd = s->conn->fd();
  const bool sock = s->conn->is_socket();
  g.unlock();
  std::size_t r = 0;
  std::exception_ptr err;
  try {
    // recv for sockets, read for pipes (recv on a pipe is ENOTSOCK).
    const MutableBuffer into(p, chunk);
    if (sock) {
      r = co_await Op<RecvPrep>(RecvPrep{fd, into, 0});
    } else {
      r = co_await Op<ReadPrep>(ReadPrep{fd, into, kCurrentPosition});
    }
  } catch (const std::system_error&) {
    err = std::current_exception();  // ConnectionResetError, ... (weft/io/errors.hpp)
  } catch (...) {
    std::lock_guard g2(s->m);
    s->waiting = false;
    throw;  // cancelled before any byte moved: nothing was lost
  }
  std::lock_guard g2(s->m);
  s->waiting = false;
  ++s->gen;
  if (err) {
    s->exc = err;  // as asyncio's connection_lost(exc): later reads raise it too
    std::rethrow_exception(err);
  }
  if (r == 0) {
    s->eof = true;
  } else {
    s->buf.commit(r);
  }
}

}  // namespace
}  // namespace detail

using detail::ReaderState;
using detail::StreamConn;
using detail::WriterState;

// ---------------------------------------------------------------- reader

namespace {
std::size_t checked_limit(std::ptrdiff_t limit) {
  if (limit <= 0) throw weft::ValueError("StreamReader limit must be > 0");
  return static_cast<std::size_t>(limit);
}
}  // namespace

StreamReader::StreamReader(std::ptrdiff_t limit) : s_(std::make_shared<ReaderState>()) {
  s_->limit = checked_limit(limit);
}

StreamReader::StreamReader(std::shared_ptr<StreamConn> conn, std::ptrdiff_t limit)
    : s_(std::make_shared<ReaderState>()) {
  s_->limit = checked_limit(limit);
  s_->conn = std::move(conn);
}

std::size_t StreamReader::limit() const noexcept { return s_->limit; }

void StreamReader::feed_data(std::string_view data) {
  std::unique_lock g(s_->m);
  if (s_->conn) throw weft::RuntimeError("feed_data on a StreamReader that reads a connection");
  if (s_->eof) throw weft::RuntimeError("feed_data after feed_eof");
  if (data.empty()) return;
  s_->buf.append(data);
  ++s_->gen;
  s_->wake(g);
}

void StreamReader::feed_eof() {
  std::unique_lock g(s_->m);
  s_->eof = true;
  ++s_->gen;
  s_->wake(g);
}

void StreamReader::set_exception(std::exception_ptr e) {
  std::unique_lock g(s_->m);
  s_->exc = std::move(e);
  ++s_->gen;
  s_->wake(g);
}

std::exception_ptr StreamReader::exception() const {
  std::lock_guard g(s_->m);
  return s_->exc;
}

bool StreamReader::at_eof() const {
  std::lock_guard g(s_->m);
  return s_->eof && s_->buf.empty();
}

Task<std::string> StreamReader::read(std::ptrdiff_t n) {
  std::shared_ptr<ReaderState> keep = s_;
  ReaderState* s = keep.get();
  {
    std::lock_guard g(s->m);
    if (s->exc) std::rethrow_exception(s->exc);
  }
  if (n == 0) co_return std::string();
  if (n < 0) {
    // To EOF, in chunks of `limit` (asyncio reads limit-sized blocks too).
    std::string all;
    for (;;) {
      std::string chunk = co_await read(static_cast<std::ptrdiff_t>(s->limit));
      if (chunk.empty()) co_return all;
      all += chunk;
    }
  }
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard g(s->m);
      if (s->exc) std::rethrow_exception(s->exc);
      s->check_not_pulling("read");
      if (!s->buf.empty()) co_return s->buf.take(static_cast<std::size_t>(n));
      if (s->eof) co_return std::string();
      seen = s->gen;
    }
    co_await detail::wait_for_data(s, "read", seen);
  }
}

Task<std::string> StreamReader::readuntil(std::string sep) {
  std::shared_ptr<ReaderState> keep = s_;
  ReaderState* s = keep.get();
  if (sep.empty()) throw weft::ValueError("Separator should be at least one-byte string");
  const std::size_t seplen = sep.size();
  std::size_t offset = 0;  // where the next search starts
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard g(s->m);
      if (s->exc) std::rethrow_exception(s->exc);
      s->check_not_pulling("readuntil");
      seen = s->gen;
      std::string_view b = s->buf.view();
      if (b.size() >= offset + seplen) {
        std::size_t isep = b.find(sep, offset);
        if (isep != std::string_view::npos) {
          if (isep > s->limit) {
            throw LimitOverrunError("Separator is found, but chunk is longer than limit", isep);
          }
          co_return s->buf.take(isep + seplen);
        }
        // The separator may start within the last seplen - 1 bytes.
        offset = b.size() + 1 - seplen;
        if (offset > s->limit) {
          throw LimitOverrunError("Separator is not found, and chunk exceed the limit", offset);
        }
      }
      if (s->eof) {
        std::string partial = s->buf.take(s->buf.size());
        throw IncompleteReadError(std::move(partial), std::nullopt);
      }
    }
    co_await detail::wait_for_data(s, "readuntil", seen);
  }
}

Task<std::string> StreamReader::readline() {
  std::shared_ptr<ReaderState> keep = s_;
  ReaderState* s = keep.get();
  std::string line;
  try {
    line = co_await readuntil("\n");
  } catch (const IncompleteReadError& e) {
    co_return e.partial();
  } catch (const LimitOverrunError& e) {
    std::lock_guard g(s->m);
    s->check_not_pulling("readline");
    std::string_view b = s->buf.view();
    if (b.size() > e.consumed() && b[e.consumed()] == '\n') {
      s->buf.consume(e.consumed() + 1);  // drop the over-long line
    } else {
      s->buf.clear();  // no separator in the buffer: drop it all (§Q 110)
    }
    throw weft::ValueError(e.what());
  }
  co_return line;
}

Task<std::string> StreamReader::readexactly(std::ptrdiff_t n) {
  std::shared_ptr<ReaderState> keep = s_;
  ReaderState* s = keep.get();
  if (n < 0) throw weft::ValueError("readexactly size can not be less than zero");
  {
    std::lock_guard g(s->m);
    if (s->exc) std::rethrow_exception(s->exc);
  }
  if (n == 0) co_return std::string();
  const auto want = static_cast<std::size_t>(n);
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard g(s->m);
      if (s->exc) std::rethrow_exception(s->exc);
      s->check_not_pulling("readexactly");
      if (s->buf.size() >= want) co_return s->buf.take(want);
      seen = s->gen;
      if (s->eof) {
        std::string partial = s->buf.take(s->buf.size());
        throw IncompleteReadError(std::move(partial), want);
      }
    }
    co_await detail::wait_for_data(s, "readexactly", seen);
  }
}

namespace {

// lines()'s body. A free function taking the handle by value, not a member
// coroutine: a member's frame would keep only `this`, which dangles once the
// StreamReader the generator came from is moved or destroyed.
AsyncGenerator<std::string> lines_of(StreamReader reader) {
  for (;;) {
    std::string line = co_await reader.readline();
    if (line.empty()) co_return;  // EOF: readline's "" (a line always has a byte)
    co_yield std::move(line);
  }
}

}  // namespace

AsyncGenerator<std::string> StreamReader::lines() const { return lines_of(*this); }

// ---------------------------------------------------------------- writer

namespace {

// Shuts the connection down after the last flush and wakes wait_closed().
// Called with `g` held; returns with it released.
void finish_close(WriterState* s, std::unique_lock<std::mutex>& g) noexcept {
  s->closed = true;
  std::vector<Promise<void>> closers = std::move(s->closers);
  std::vector<Promise<void>> drainers = std::move(s->drainers);
  s->closers.clear();
  s->drainers.clear();
  g.unlock();
  s->conn->shut();
  settle(drainers);
  settle(closers);
}

// # Sending without a task
// A burst of writes is sent by a chain of sends on one ring, with no task
// behind them. The write() that finds nothing in flight asks for the burst
// to start when its task's step ends (io_after_step; at once outside a
// step), so the writes of one step go out in one send. start_burst then
// submits a send of the buffer (SendReq, an IoDetached) on that worker's
// ring, and each CQE (flush_done, on the same thread) sends the rest of the
// batch, or the next batch if writes came meanwhile, or ends the burst.
// Writes from other workers only append to `pending`; the chain stays on
// the ring that started it. A request/response server so pays one SQE per
// response, not a task spawn and a step as a flusher task did
// (examples/echo_server: +7% messages/s, 4 alternated runs).
//
// A stopping worker cancels the send (IoDetached's worker_stopping): the
// rest is dropped and the writer breaks with ConnectionResetError("send
// (cancelled)"), as when the runtime cancelled a flusher task.

// Holds s->m, flushing set, batch[sent..] not empty. Puts a send of the
// rest of the batch on the current worker's ring. False if that worker is
// stopping (nothing submitted). Throws RuntimeError off a worker thread,
// std::system_error(EBUSY) if the ring has no SQE to give.
bool submit_send_locked(WriterState* s) {
  io_uring_sqe* sqe = weft::detail::io_detached_begin(&s->req);
  if (sqe == nullptr) return false;
  const std::size_t left = std::min<std::size_t>(s->inflight(), 1u << 30);
  const ConstBuffer from(s->batch.data() + s->sent, left);
  const int fd = s->conn->fd();
  if (s->conn->is_socket()) {
    // MSG_NOSIGNAL: a gone peer is a BrokenPipeError, never SIGPIPE.
    detail::SendPrep{fd, from, MSG_NOSIGNAL}.prep(sqe);
  } else {
    detail::block_sigpipe_here();  // EPIPE, not a dead process
    detail::WritePrep{fd, from, detail::kCurrentPosition}.prep(sqe);
  }
  io_uring_sqe_set_data(sqe, static_cast<weft::detail::IoCompletion*>(&s->req));
  return true;
}

// submit_send_locked for the CQE handler: a failure breaks the writer
// instead of throwing. False if nothing was submitted.
bool resubmit_locked(WriterState* s) noexcept {
  try {
    if (submit_send_locked(s)) return true;
    s->error = std::make_exception_ptr(ConnectionResetError(ECONNRESET, "send (cancelled)"));
  } catch (...) {
    s->error = std::current_exception();
  }
  return false;
}

// Holds s->m (`g`), flushing set, the batch done or the writer broken: wakes
// drain() below the low-water mark, then takes the next batch, or ends the
// burst (performing a close or write_eof that waited for it). Returns with
// `g` released; moves `self` into `keep` when the burst ends.
void next_batch(WriterState* s, std::unique_lock<std::mutex>& g,
                std::shared_ptr<WriterState>& keep) noexcept {
  std::vector<Promise<void>> wake;
  if (s->error || s->pending.size() <= s->low) {
    wake = std::move(s->drainers);
    s->drainers.clear();
  }
  s->batch.clear();
  s->sent = 0;
  if (!s->pending.empty() && !s->error) {
    s->batch.swap(s->pending);
    if (resubmit_locked(s)) {
      g.unlock();
      settle(wake);
      return;
    }
    for (auto& p : s->drainers) wake.push_back(std::move(p));  // broken now
    s->drainers.clear();
    s->batch.clear();
  }
  s->flushing = false;
  s->pending.clear();
  keep = std::move(s->self);
  const bool eof = s->eof_wanted && !s->error;
  s->eof_wanted = false;
  if (s->closing && !s->closed) {
    finish_close(s, g);
  } else {
    g.unlock();
    if (eof && s->conn->is_socket()) ::shutdown(s->conn->fd(), SHUT_WR);
  }
  settle(wake);
}

// A CQE of the writer's send, on the thread of the worker whose ring has it.
void flush_done(weft::detail::IoCompletion* c, int res, unsigned /*flags*/) noexcept {
  auto* req = static_cast<detail::SendReq*>(static_cast<weft::detail::IoDetached*>(c));
  WriterState* s = req->s;
  weft::detail::io_detached_end(req);
  std::shared_ptr<WriterState> keep;  // outlives `g`: may hold the last reference
  std::unique_lock g(s->m);
  if (res < 0) {
    if (req->worker_stopping && res == -ECANCELED) {
      // The runtime shuts down: the connection can no longer be trusted to
      // carry the rest in order.
      s->error = std::make_exception_ptr(ConnectionResetError(ECONNRESET, "send (cancelled)"));
    } else {
      try {
        throw_error(-res, s->conn->is_socket() ? "send" : "write");
      } catch (...) {
        s->error = std::current_exception();  // ConnectionResetError, ... (weft/io/errors.hpp)
      }
    }
  } else {
    s->sent += static_cast<std::size_t>(res);
    if (s->sent < s->batch.size() && resubmit_locked(s)) return;
  }
  next_batch(s, g, keep);
}

// The end of the step whose write() started a burst (`start`): sends what
// the step wrote.
void start_burst(weft::detail::InboxItem* item) noexcept {
  WriterState* s = static_cast<detail::StartReq*>(item)->s;
  std::shared_ptr<WriterState> keep;  // outlives `g`
  std::unique_lock g(s->m);
  next_batch(s, g, keep);
}

}  // namespace

WriterState::WriterState() noexcept {
  req.s = this;
  req.complete = flush_done;
  start.s = this;
  start.run = start_burst;
}

StreamWriter::StreamWriter(std::shared_ptr<StreamConn> conn, std::shared_ptr<ReaderState> reader)
    : s_(std::make_shared<WriterState>()) {
  s_->conn = std::move(conn);
  s_->reader = std::move(reader);
}

void StreamWriter::write(std::string_view data) {
  if (data.empty()) return;
  WriterState* s = s_.get();
  std::unique_lock g(s->m);
  if (s->closing || s->error) return;  // asyncio drops these; drain() raises
  s->pending.append(data);
  if (s->flushing) return;  // the send in flight, or the step's end, takes it
  // Inside a task's step (nearly always): more writes may follow before it
  // ends; start_burst sends them all. Elsewhere (a loop callback) the send
  // starts now. Off a worker this throws RuntimeError, and the bytes stay
  // buffered for the next write().
  const bool at_step_end = weft::detail::io_after_step(&s->start);
  s->flushing = true;
  s->self = s_;
  if (at_step_end) return;
  std::shared_ptr<WriterState> keep;  // never the last reference: s_ holds one
  next_batch(s, g, keep);
}

Task<void> StreamWriter::drain() {
  std::shared_ptr<WriterState> keep = s_;
  WriterState* s = keep.get();
  std::optional<Future<void>> f;
  {
    std::lock_guard g(s->m);
    if (s->error) std::rethrow_exception(s->error);
    if (s->closing) {
      throw ConnectionResetError(ECONNRESET, "drain (the writer is closed)");
    }
    // Below the high-water mark (nearly always): no promise is made, so the
    // common drain() allocates nothing.
    if (s->pending.size() + s->inflight() <= s->high) co_return;
    Promise<void> p;
    f.emplace(p.get_future());
    s->drainers.push_back(std::move(p));
  }
  co_await *f;
  std::lock_guard g(s->m);
  if (s->error) std::rethrow_exception(s->error);
}

void StreamWriter::write_eof() {
  std::unique_lock g(s_->m);
  if (!s_->conn->is_socket()) throw weft::RuntimeError("write_eof: not a socket");
  if (s_->closing) return;
  if (s_->flushing) {
    s_->eof_wanted = true;
    return;
  }
  g.unlock();
  if (::shutdown(s_->conn->fd(), SHUT_WR) != 0 && errno != ENOTCONN) throw_error(errno, "shutdown");
}

bool StreamWriter::can_write_eof() const noexcept { return s_->conn->is_socket(); }

void StreamWriter::close() noexcept {
  std::unique_lock g(s_->m);
  if (s_->closing) return;
  s_->closing = true;
  if (s_->flushing) return;  // the send in flight closes after the last batch
  finish_close(s_.get(), g);
}

bool StreamWriter::is_closing() const noexcept {
  std::lock_guard g(s_->m);
  return s_->closing;
}

Task<void> StreamWriter::wait_closed() {
  std::shared_ptr<WriterState> keep = s_;
  WriterState* s = keep.get();
  Promise<void> p;
  Future<void> f = p.get_future();
  {
    std::lock_guard g(s->m);
    if (s->closed) co_return;
    s->closers.push_back(std::move(p));
  }
  co_await f;
}

std::size_t StreamWriter::buffered() const {
  std::lock_guard g(s_->m);
  return s_->pending.size() + s_->inflight();
}

void StreamWriter::set_write_buffer_limits(std::size_t high, std::size_t low) {
  if (low > high) throw weft::ValueError("high must be >= low");
  std::lock_guard g(s_->m);
  s_->high = high;
  s_->low = low;
}

int StreamWriter::fd() const noexcept { return s_->conn->fd(); }

// ---------------------------------------------------------------- factories

std::pair<StreamReader, StreamWriter> open_stream(int fd, std::ptrdiff_t limit) {
  if (fd < 0) throw weft::ValueError("open_stream: negative file descriptor");
  checked_limit(limit);
  auto conn = std::make_shared<StreamConn>(fd);
  StreamReader r(conn, limit);
  StreamWriter w(conn, r.state());
  return {std::move(r), std::move(w)};
}

StreamReader open_reader(int fd, std::ptrdiff_t limit) {
  if (fd < 0) throw weft::ValueError("open_reader: negative file descriptor");
  checked_limit(limit);
  return StreamReader(std::make_shared<StreamConn>(fd), limit);
}

StreamWriter open_writer(int fd) {
  if (fd < 0) throw weft::ValueError("open_writer: negative file descriptor");
  return StreamWriter(std::make_shared<StreamConn>(fd), nullptr);
}

}  // namespace weft::io
