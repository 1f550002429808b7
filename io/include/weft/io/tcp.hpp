// weft/io/tcp.hpp - TcpStream and TcpListener.
//
//   auto listener = weft::io::TcpListener::bind(weft::io::SocketAddress::loopback_v4(0));
//   auto conn = co_await listener.accept();
//   char buf[4096];
//   std::size_t n = co_await conn.recv(buf);
//   co_await conn.send_all({buf, n});
//
//   auto c = co_await weft::io::TcpStream::connect("localhost", 8080, 5s);
//
// # Multishot accept
// A listener keeps one multishot accept (IORING_OP_ACCEPT with
// IORING_ACCEPT_MULTISHOT) armed on a worker's ring, from its first
// accept() on. Each connection the kernel accepts goes to the oldest
// waiting accept(), or into a queue the listener owns; accept() takes from
// that queue without a system call or an SQE and waits only when it is
// empty. Measured by tests/unit/io_accept_test.cpp: 200 connections cost 2
// SQEs in all, where a single-shot accept takes one per connection.
//
// - Which ring: the multishot lives on the ring of the worker whose accept()
//   armed it (the rings are SINGLE_ISSUER, so only that worker submits for
//   it or cancels it). Its CQEs wake waiters on any worker, so accept() may
//   be called from tasks on any worker, several at once (served FIFO); it
//   does not move when the calling task does. A listener per worker with
//   ListenOptions::reuse_port spreads the accepting itself.
// - Backpressure: the queue holds at most min(backlog, 64) connections
//   (AcceptQueue::kMaxQueued, chosen rather than measured: 64 absorbs a
//   burst between two runs of an accept loop, and more only moves the
//   kernel's backlog into our memory).
//   When it is full the multishot is cancelled; it is re-armed once
//   accept()s have taken it down to half. Meanwhile new connections wait in
//   the kernel's listen backlog (and beyond it are refused or dropped, as
//   for any listener nobody accepts from). Connections the kernel had
//   accepted before the cancel took effect are kept (they already exist;
//   closing them would drop clients), so the queue may exceed the cap by at
//   most one backlog's worth, once per pause. Measured with
//   tests/stress/io_stress_test.cpp (10,000 connections in a burst, backlog
//   65535, cap 64): 42 pauses, 43 arms, at most 512 queued.
// - Errors: a failed accept (EMFILE, ENFILE, ENOMEM, ECONNABORTED, EINVAL
//   after shutdown(2)) ends the multishot; the error goes to the oldest
//   waiting accept() (or to the next accept() if none waits), as the
//   single accept's error did. The multishot is re-armed by the next
//   accept(), not at once, so a lasting EMFILE costs one attempt per
//   accept() call instead of spinning the ring; the connection that could
//   not be accepted stays in the kernel's backlog.
// - Cancelling an accept(): a connection is never lost. If it had not been
//   handed a connection, accept() raises CancelledError and the next
//   connection goes to the next accept(); if it had, it returns it and the
//   cancel is raised at the task's next suspension point (DESIGN.md §4).
//   As for any operation, a task that then returns at once, with the cancel
//   still pending, ends cancelled and its result is dropped (asyncio's
//   rule): store the stream before returning if it must survive.
// - Timeouts: a waiting accept() with a timeout arms a timer on its loop
//   (not a linked timeout: the multishot has no SQE per call).
// - Closing: close(), the destructor, move-assignment and release() end it
//   from any thread: the socket is shut down first (shutdown(2), only while
//   a multishot is armed: the request holds a reference to the socket, so
//   close(2) alone would leave it listening until the cancel lands; not for
//   release(), whose caller keeps the socket listening), queued
//   connections are closed, waiting accept()s fail with EBADF, and the
//   multishot is cancelled on its own ring (through that worker's inbox from
//   another thread); its last CQE is handled there and closes whatever it
//   brings. A runtime that stops with a listener still armed cancels the
//   multishot and reaps its last CQE before its rings close; the queued
//   connections stay with the listener (closed when it is), and the next
//   accept(), in another runtime, arms it again.
// - Cost: while armed, the multishot keeps its worker entering the kernel
//   once per tick, as any operation in flight does (an idle recv of a
//   connection, say).
//
// Threads and closing: see weft/io/socket.hpp.
#pragma once

#include <cstdint>
#include <string_view>
#include <weft/io/socket.hpp>
#include <weft/task.hpp>

namespace weft::io {

class TcpStream : public StreamSocket {
 public:
  TcpStream() noexcept = default;
  /// Takes ownership of a connected TCP socket.
  explicit TcpStream(int fd) noexcept : StreamSocket(fd) {}

  /// Connects to `addr` (IPv4 or IPv6). ConnectionRefusedError if nothing
  /// listens there, TimeoutError when the timeout expires first,
  /// std::system_error("connect") otherwise.
  static Task<TcpStream> connect(SocketAddress addr, OpTimeout timeout = std::nullopt);
  /// Resolves `host` (weft::getaddrinfo on the default executor; numeric
  /// addresses skip it) and tries each address in the resolver's order
  /// until one connects, as asyncio.open_connection does without happy
  /// eyeballs. The timeout is a deadline for resolution and every attempt.
  /// Throws GaiError if resolution fails, else the last attempt's error.
  /// `host` must stay valid until the task starts (always so when the call
  /// is co_awaited at once).
  static Task<TcpStream> connect(std::string_view host, std::uint16_t port,
                                 OpTimeout timeout = std::nullopt);

  /// Zero-copy send (IORING_OP_SEND_ZC): the kernel sends from `buf`'s pages
  /// instead of copying them into the socket buffer, and posts a second CQE
  /// (a notification) when it no longer needs them. The co_await returns
  /// only after that notification, so `buf` may be reused or freed as soon
  /// as it returns, whatever the outcome: cancelled or timed out, the task
  /// still waits for the notification before it sees the CancelledError or
  /// TimeoutError (DESIGN.md §4). Returns the bytes taken (up to buf.size).
  /// MSG_NOSIGNAL as send(). Throws as send(): ConnectionResetError,
  /// BrokenPipeError (peer gone), TimeoutError, CancelledError,
  /// std::system_error("send_zc") otherwise. The timeout bounds the send,
  /// not the wait for the notification: bytes the kernel took are referred
  /// to until the peer acknowledges them, so with a peer that stops reading
  /// the co_await waits until it reads again or the connection ends, past
  /// the timeout (there is no way to take the pages back; send() copies and
  /// does not have this). On loopback the kernel copies
  /// anyway when the data reaches the receiving socket (the awaiter's
  /// notification_result() has IORING_NOTIF_USAGE_ZC_COPIED then), so it
  /// only costs there; bench/micro/send_zc.cpp has the figures, and send()
  /// does not switch to it by itself (see the README, "Zero-copy send").
  /// Threads: as send() (weft/io/socket.hpp); await inside a task.
  detail::NotifOp<detail::SendZcPrep> send_zc(ConstBuffer buf, OpTimeout timeout = std::nullopt,
                                              int flags = 0) const {
    return detail::NotifOp<detail::SendZcPrep>(detail::SendZcPrep{fd_, buf, flags | MSG_NOSIGNAL},
                                               timeout);
  }
  /// Sends all of buf with send_zc, in as many calls as it takes. Timeout:
  /// a deadline for the whole send (see send_zc for the notification).
  /// Throws and cancels as send_all; a prefix of buf may have been sent.
  /// Threads: as send_zc.
  Task<void> send_all_zc(ConstBuffer buf, OpTimeout timeout = std::nullopt) const;

  /// TCP_NODELAY on or off (Nagle's algorithm off when on).
  void set_nodelay(bool on);
  bool nodelay() const;
  /// SO_KEEPALIVE on or off; with on, `idle_seconds` > 0 also sets
  /// TCP_KEEPIDLE. Throws std::system_error.
  void set_keepalive(bool on, int idle_seconds = 0);
  bool keepalive() const;
};

/// bind() options.
struct ListenOptions {
  int backlog = 1024;         // listen(2) backlog (the kernel caps it at somaxconn)
  bool reuse_address = true;  // SO_REUSEADDR, as asyncio does on Unix
  bool reuse_port = false;    // SO_REUSEPORT: one listener per worker on the same port
  bool v6_only = false;       // IPV6_V6ONLY for an IPv6 address
};

class TcpListener : public Listener<TcpStream> {
 public:
  TcpListener() noexcept = default;
  /// Takes ownership of listening socket `fd`; `backlog` also caps the
  /// accept queue (see above). Throws std::bad_alloc (closing `fd`).
  explicit TcpListener(int fd, int backlog = ListenOptions{}.backlog) : Listener(fd, backlog) {}

  /// socket + bind + listen, synchronously (none of them blocks). Port 0
  /// picks a free port: read it with local_address().port(). Throws
  /// std::system_error ("bind": EADDRINUSE, ...), ValueError for an
  /// AF_UNSPEC/AF_UNIX address. Any thread.
  static TcpListener bind(const SocketAddress& addr, ListenOptions options = {});
  /// Resolves `host` first (numeric addresses skip the resolver; "" means
  /// every IPv4 interface) and binds the first address that works.
  static Task<TcpListener> bind(std::string_view host, std::uint16_t port,
                                ListenOptions options = {});

  // accept(), queued(), close(), release(), the destructor: Listener
  // (weft/io/socket.hpp).
};

}  // namespace weft::io
