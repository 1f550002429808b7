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
// accept is single-shot (one IORING_OP_ACCEPT per call): a multishot accept
// keeps a kernel request alive across awaits, which needs a queue of
// accepted descriptors owned by the listener and a cancel when it closes;
// that is left for when a benchmark shows the single-shot form costs
// anything measurable (an accept per connection is cheap next to the
// connection's own traffic).
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

class TcpListener : public Socket {
 public:
  TcpListener() noexcept = default;
  explicit TcpListener(int fd) noexcept : Socket(fd) {}

  /// socket + bind + listen, synchronously (none of them blocks). Port 0
  /// picks a free port: read it with local_address().port(). Throws
  /// std::system_error ("bind": EADDRINUSE, ...), ValueError for an
  /// AF_UNSPEC/AF_UNIX address. Any thread.
  static TcpListener bind(const SocketAddress& addr, ListenOptions options = {});
  /// Resolves `host` first (numeric addresses skip the resolver; "" means
  /// every IPv4 interface) and binds the first address that works.
  static Task<TcpListener> bind(std::string_view host, std::uint16_t port,
                                ListenOptions options = {});

  /// Waits for one connection. The new socket is close-on-exec.
  detail::Op<detail::AcceptPrep<TcpStream>> accept(OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::AcceptPrep<TcpStream>>(detail::AcceptPrep<TcpStream>{fd_}, timeout);
  }
};

}  // namespace weft::io
