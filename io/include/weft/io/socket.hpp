// weft/io/socket.hpp - Socket (a descriptor owner with the operations every
// socket has) and StreamSocket (the byte-stream operations shared by TCP and
// Unix stream sockets).
//
// # Ownership and closing
// A Socket owns its descriptor (move-only). `co_await s.close()` closes it
// through the ring and reports errors. The destructor of a still-open socket
// cannot await, so it calls close(2) directly. That call does not sleep
// (unless the program itself set SO_LINGER with a timeout; await close()
// then) and costs about a microsecond; it was chosen over queueing an
// IORING_OP_CLOSE with the tick's SQEs because the kernel then drops the
// socket's last reference only after the whole submission has run, so a
// listener "closed" by its destructor would still accept a connect
// submitted in the same tick. With close(2) the descriptor is gone when
// the destructor returns, as Python's socket.close() promises. Destroying a
// socket while an operation on it is in flight cannot happen: the awaiting
// frame is never destroyed before the CQE (DESIGN.md §4).
//
// # Operations
// Each returns an awaiter (weft/io/op.hpp) to co_await at once, or a Task
// for the composed ones. Every one takes an optional Timeout (a linked
// timeout on the ring; composed ones treat it as a deadline for the whole
// call) and is cancel-safe: bytes the kernel already moved are returned,
// and the cancel is raised at the next suspension point. Errors: see
// weft/io/errors.hpp. Blocking-free system calls with no io_uring form in
// the kernels weft supports (socket, bind, listen, setsockopt,
// getsockname) are made directly; they do not sleep.
//
// Threads: a Socket is not synchronised. One task uses it at a time, except
// that one task may recv while another sends on the same stream (the kernel
// allows it and weft keeps no state of its own per direction), and that a
// listener's accept() may be awaited by any number of tasks on any workers
// at once (its queue is synchronised; see Listener below and
// weft/io/tcp.hpp). Operations must be awaited inside a weft task.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <span>
#include <weft/io/address.hpp>
#include <weft/io/buffer.hpp>
#include <weft/io/detail/accept_queue.hpp>
#include <weft/io/detail/fd_owner.hpp>
#include <weft/io/detail/preps.hpp>
#include <weft/io/op.hpp>
#include <weft/task.hpp>

namespace weft::io {

class Socket : public detail::FdOwner {
 public:
  Socket() noexcept = default;
  /// Takes ownership of `fd` (-1 for none). fd(), is_open(), release() and
  /// close() (through the ring; the socket is closed from the call on,
  /// whatever the outcome; throws std::system_error("close")) come from
  /// detail::FdOwner; the destructor calls close(2) (see above).
  explicit Socket(int fd) noexcept : FdOwner(fd) {}

  /// getsockname / getpeername. Throw std::system_error.
  SocketAddress local_address() const;
  SocketAddress peer_address() const;
  /// setsockopt / getsockopt with an int value. Throw std::system_error.
  void set_option(int level, int name, int value);
  int get_option(int level, int name) const;
  /// SO_ERROR, read and cleared.
  int take_error() const;
};

class StreamSocket : public Socket {
 public:
  using Socket::Socket;

  /// Receives up to buf.size bytes; returns how many, 0 at end of stream
  /// (the peer shut down its side, or buf is empty). ConnectionResetError
  /// if the peer reset the connection.
  detail::Op<detail::RecvPrep> recv(MutableBuffer buf, OpTimeout timeout = std::nullopt,
                                    int flags = 0) const {
    return detail::Op<detail::RecvPrep>(detail::RecvPrep{fd_, buf, flags}, timeout);
  }
  /// Sends up to buf.size bytes (MSG_NOSIGNAL: a gone peer is a
  /// BrokenPipeError, never SIGPIPE); returns how many were taken.
  detail::Op<detail::SendPrep> send(ConstBuffer buf, OpTimeout timeout = std::nullopt,
                                    int flags = 0) const {
    return detail::Op<detail::SendPrep>(detail::SendPrep{fd_, buf, flags | MSG_NOSIGNAL}, timeout);
  }
  /// Gathers the buffers into one sendmsg; returns the bytes taken. The
  /// iovec array must stay valid until the co_await returns.
  detail::Op<detail::SendvPrep> sendv(std::span<const iovec> bufs,
                                      OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::SendvPrep>(detail::SendvPrep{fd_, bufs.data(), bufs.size()}, timeout);
  }
  /// Sends all of buf, in as many sends as it takes. The timeout is a
  /// deadline for the whole call. On an error or a cancel, some prefix of
  /// buf may have been sent; cancellation raises at a send boundary only
  /// after the bytes already taken are accounted (the task sees the cancel,
  /// the kernel keeps what it took).
  Task<void> send_all(ConstBuffer buf, OpTimeout timeout = std::nullopt) const;
  /// Receives exactly buf.size bytes; EndOfFileError if the stream ends
  /// first (its what() says how many had arrived). Timeout: a deadline for
  /// the whole call.
  Task<void> recv_exact(MutableBuffer buf, OpTimeout timeout = std::nullopt) const;
  /// shutdown(2) through the ring: SHUT_WR half-closes (the peer's recv
  /// returns 0, this side can still receive), SHUT_RD, SHUT_RDWR.
  detail::Op<detail::ShutdownPrep> shutdown(int how = SHUT_WR,
                                            OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::ShutdownPrep>(detail::ShutdownPrep{fd_, how}, timeout);
  }
};

/// What TcpListener and UnixListener share: a listening socket and the
/// queue its multishot accept fills (the design, the queue's cap and which
/// worker's ring holds the request: weft/io/tcp.hpp). `Stream` is what
/// accept() returns.
template <class Stream>
class Listener : public Socket {
 public:
  Listener() noexcept = default;
  /// Takes ownership of listening socket `fd`; `backlog` (its listen(2)
  /// backlog) also caps the accept queue. Throws std::bad_alloc (the socket
  /// is closed then). Any thread.
  explicit Listener(int fd, int backlog) : Socket(fd) {
    q_ = std::make_shared<detail::AcceptQueue>(fd, backlog);
  }
  Listener(Listener&&) noexcept = default;
  /// Closes this listener first, as the destructor does.
  Listener& operator=(Listener&& o) noexcept {
    if (this != &o) {
      stop_accepting(true);
      Socket::operator=(std::move(o));
      q_ = std::move(o.q_);
    }
    return *this;
  }
  /// Stops listening at once (shutdown(2) when a multishot accept is armed,
  /// then close(2)), closes the connections accepted but not taken, fails
  /// waiting accept()s with EBADF and cancels the multishot on its ring (its
  /// last CQE is handled there, later; whatever it brings is closed). Never
  /// throws. Any thread.
  ~Listener() { stop_accepting(true); }

  /// Waits for one connection and returns it (close-on-exec). Takes the
  /// oldest queued connection if there is one (no system call), else waits
  /// for the multishot accept, arming it on the calling worker's ring if it
  /// is not armed. Throws CancelledError (a connection that arrived anyway
  /// stays queued for the next accept(), or, if it was already handed to
  /// this one, is returned and the cancel raised at the next suspension
  /// point), TimeoutError("accept: timed out") when `timeout` expires first
  /// (ValueError if it is negative), std::system_error("accept: ...") for
  /// the kernel's errors (EMFILE, ENFILE, ENOMEM, ECONNABORTED, EINVAL
  /// after shutdown(2); EBADF once the listener is closed, also for an
  /// accept() waiting when it closes), RuntimeError outside a weft task.
  /// Any worker thread; several tasks on several workers may wait at once
  /// (FIFO). Co_await it at once.
  detail::AcceptOp<Stream> accept(OpTimeout timeout = std::nullopt) const {
    return detail::AcceptOp<Stream>(q_.get(), timeout);
  }
  /// Like the destructor, then closes the socket through the ring (as
  /// Socket::close). Throws std::system_error("close"). Inside a weft task.
  detail::Op<detail::ClosePrep> close(OpTimeout timeout = std::nullopt) {
    stop_accepting(true);
    return Socket::close(timeout);
  }
  /// Gives up the socket: the multishot is cancelled (without shutdown(2):
  /// the socket keeps listening for its new owner), connections it had
  /// accepted and not handed out are closed. Never throws. Any thread.
  int release() noexcept {
    stop_accepting(false);
    return Socket::release();
  }
  /// Connections accepted by the multishot and not yet taken by accept().
  /// Any thread (a snapshot).
  std::size_t queued() const { return q_ ? q_->queued() : 0; }

 private:
  void stop_accepting(bool shut_down) noexcept {
    if (q_) {
      q_->close(shut_down);
      q_.reset();
    }
  }
  std::shared_ptr<detail::AcceptQueue> q_;
};

}  // namespace weft::io
