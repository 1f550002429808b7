// weft/io/unix.hpp - Unix stream sockets: UnixStream and UnixListener.
//
// Same operations as TCP (weft/io/socket.hpp). Paths starting with '\0' are
// abstract addresses (no file). UnixListener::bind removes a stale socket
// file at the path first, as asyncio's create_unix_server does (only if it
// is a socket: any other file makes bind fail with EADDRINUSE); closing the
// listener does not remove it (call io::unlink).
//
// Threads and closing: see weft/io/socket.hpp.
#pragma once

#include <string_view>
#include <weft/io/socket.hpp>
#include <weft/task.hpp>

namespace weft::io {

class UnixStream : public StreamSocket {
 public:
  UnixStream() noexcept = default;
  explicit UnixStream(int fd) noexcept : StreamSocket(fd) {}

  /// Connects to the socket at `addr` (AF_UNIX). ConnectionRefusedError if
  /// nothing listens there, std::system_error("connect") with ENOENT if
  /// there is no such file, TimeoutError on timeout.
  static Task<UnixStream> connect(SocketAddress addr, OpTimeout timeout = std::nullopt);
  /// A connected pair (socketpair(2)); any thread.
  static std::pair<UnixStream, UnixStream> pair();
};

class UnixListener : public Listener<UnixStream> {
 public:
  UnixListener() noexcept = default;
  /// Takes ownership of listening socket `fd`; `backlog` also caps the
  /// accept queue (weft/io/tcp.hpp). Throws std::bad_alloc (closing `fd`).
  explicit UnixListener(int fd, int backlog = 1024) : Listener(fd, backlog) {}

  /// socket + bind + listen (see above for a stale socket file). Throws
  /// std::system_error, ValueError for a non-AF_UNIX address. Any thread.
  static UnixListener bind(const SocketAddress& addr, int backlog = 1024);

  // accept() (multishot, as TcpListener's), queued(), close(), release(),
  // the destructor: Listener (weft/io/socket.hpp).
};

}  // namespace weft::io
