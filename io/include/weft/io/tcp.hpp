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
