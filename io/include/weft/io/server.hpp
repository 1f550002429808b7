// weft/io/server.hpp - asyncio's start_server and open_connection.
//
//   auto handler = [](weft::io::StreamReader r, weft::io::StreamWriter w) -> weft::Task<void> {
//     while (true) {
//       std::string line = co_await r.readline();
//       if (line.empty()) break;
//       w.write(line);
//       co_await w.drain();
//     }
//   };
//   weft::io::Server server = weft::io::start_server(handler, "127.0.0.1", 8888);
//   co_await server.serve_forever();
//
// # Differences from asyncio, on purpose
// - start_server is not a coroutine: creating the socket, binding and
//   listening never block, so it returns the listening Server at once. It
//   takes numeric addresses (and "localhost", "" = every IPv4 interface);
//   resolve other names with weft::getaddrinfo first. Besides being simpler,
//   this keeps the handler (often a capturing lambda) out of a co_await
//   expression, where g++ 12 mishandles such temporaries (README).
// - Each connection's handler runs as its own task. When it returns, the
//   connection is closed once its StreamReader/StreamWriter handles are gone
//   (the handles own the socket); asyncio leaves that to the garbage
//   collector. An exception escaping a handler is reported to the runtime's
//   exception handler as "Unhandled exception in client_connected_cb" (§Q 116)
//   and the connection is closed.
// - There is one accept loop per Server; its accept() takes from the
//   listener's multishot accept queue (weft/io/tcp.hpp), so a burst of
//   connections costs no SQE per connection. Handlers are spawned on the
//   worker that runs the loop and move to idle workers by work stealing. With
//   ServerOptions::reuse_port and one Server per worker the kernel spreads
//   connections instead.
//
// Threads: start_server and open_connection need a weft task (a worker
// thread); Server's members may be called from any thread, its awaitables
// inside a weft task.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>
#include <weft/io/address.hpp>
#include <weft/io/buffer.hpp>
#include <weft/io/streams.hpp>

namespace weft::io {

/// A connection handler: asyncio's client_connected_cb.
using ClientConnected = std::function<Task<void>(StreamReader, StreamWriter)>;

struct ServerOptions {
  /// The StreamReader limit of every connection.
  std::ptrdiff_t limit = static_cast<std::ptrdiff_t>(StreamReader::kDefaultLimit);
  int backlog = 1024;
  bool reuse_port = false;  // SO_REUSEPORT (several servers on one port)
  bool nodelay = true;      // TCP_NODELAY on accepted sockets (asyncio sets it too)
};

namespace detail {
struct ServerState;
}

/// asyncio.Server: a listening socket and its accept loop.
class Server {
 public:
  Server() = default;
  explicit Server(std::shared_ptr<detail::ServerState> s) : s_(std::move(s)) {}

  /// The address the server listens on (its port, if 0 was asked). Throws
  /// RuntimeError on an empty (default-constructed) Server. Any thread.
  SocketAddress address() const;
  /// address().port(); same errors.
  std::uint16_t port() const { return address().port(); }
  /// True until close() (false for an empty Server). Any thread.
  bool is_serving() const noexcept;
  /// Stops accepting and closes the listening socket; connections already
  /// accepted go on. Idempotent; never throws. Any thread.
  void close() noexcept;
  /// Completes once the accept loop has ended after close() (at once for an
  /// empty Server). Throws CancelledError. Inside a weft task.
  Task<void> wait_closed();
  /// Waits until close(); cancelling it closes the server (asyncio's
  /// serve_forever). Throws CancelledError, RuntimeError on an empty Server.
  /// Inside a weft task.
  Task<void> serve_forever();

 private:
  std::shared_ptr<detail::ServerState> s_;
};

/// Listens on host:port and runs `cb(reader, writer)` as a task per
/// connection. Throws ValueError for a bad host (not numeric, "localhost" or
/// ""), std::system_error("bind") such as EADDRINUSE, RuntimeError outside a
/// weft task.
Server start_server(ClientConnected cb, std::string_view host, std::uint16_t port,
                    ServerOptions options = {});

/// Connects to host:port (a name is resolved with weft::getaddrinfo) and
/// returns the connection's reader and writer. Throws ConnectionRefusedError,
/// weft::TimeoutError, GaiError, std::system_error("connect"). `host` must
/// stay valid until the task starts (always so when co_awaited at once).
Task<std::pair<StreamReader, StreamWriter>> open_connection(
    std::string_view host, std::uint16_t port,
    std::ptrdiff_t limit = static_cast<std::ptrdiff_t>(StreamReader::kDefaultLimit),
    OpTimeout timeout = std::nullopt);

}  // namespace weft::io
