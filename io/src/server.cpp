// server.cpp - start_server's accept loop and open_connection (see
// weft/io/server.hpp).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <vector>
#include <weft/io/server.hpp>
#include <weft/io/tcp.hpp>
#include <weft/join_handle.hpp>
#include <weft/runtime.hpp>
#include <weft/sleep.hpp>

#include "settle.hpp"

namespace weft::io {

namespace detail {

struct ServerState {
  ClientConnected cb;
  ServerOptions opts;
  TcpListener listener;
  SocketAddress addr;
  std::mutex m;
  std::atomic<bool> serving{true};             // false from close() on
  bool loop_done = false;                      // the accept loop has ended (under m)
  std::vector<Promise<void>> closed_waiters;   // wait_closed()
  std::vector<Promise<void>> forever_waiters;  // serve_forever()
};

}  // namespace detail

namespace {

using detail::ServerState;

// One connection: the user's handler, with asyncio's report if it fails.
Task<void> client_task(std::shared_ptr<ServerState> st, StreamReader r, StreamWriter w) {
  std::exception_ptr err;
  try {
    co_await st->cb(r, w);
  } catch (const weft::CancelledError&) {
    throw;
  } catch (...) {
    err = std::current_exception();
  }
  if (err) {
    ExceptionContext ctx;
    ctx.message = "Unhandled exception in client_connected_cb";
    ctx.exception = err;
    ctx.task = current_task();
    call_exception_handler(ctx);
    w.close();
  }
}

bool transient_accept_error(int e) {
  // Out of descriptors or memory: asyncio logs these and retries after a
  // pause instead of giving up on the server.
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

Task<void> accept_loop(std::shared_ptr<ServerState> st) {
  std::exception_ptr err;
  try {
    // close() shuts the listening socket down, which ends a pending accept
    // with EINVAL; the loop then sees `serving` false. (The server owns no
    // handle to this task: the task owns the state, so there is no cycle.)
    while (st->serving.load(std::memory_order_acquire)) {
      TcpStream c;
      try {
        c = co_await st->listener.accept();
      } catch (const std::system_error& e) {
        if (!st->serving.load(std::memory_order_acquire)) break;
        const bool sys = e.code().category() == std::system_category();
        if (sys && e.code().value() == ECONNABORTED) continue;  // the client gave up first
        if (!sys || !transient_accept_error(e.code().value())) throw;
        ExceptionContext ctx;
        ctx.message = "socket.accept() out of system resource";
        ctx.exception = std::current_exception();
        call_exception_handler(ctx);
      }
      if (!c.is_open()) {
        co_await weft::sleep(std::chrono::seconds(1));
        continue;
      }
      if (st->opts.nodelay) {
        try {
          c.set_nodelay(true);
        } catch (...) {
          // Not fatal for the connection.
        }
      }
      int fd = c.release();
      auto [r, w] = open_stream(fd, st->opts.limit);
      weft::spawn(client_task(st, std::move(r), std::move(w)), SpawnOptions{"weft-server-client"});
    }
  } catch (const weft::CancelledError&) {
    // close(): the normal way out.
  } catch (...) {
    err = std::current_exception();
  }
  std::vector<Promise<void>> closed, forever;
  {
    std::lock_guard g(st->m);
    st->serving.store(false, std::memory_order_release);
    st->loop_done = true;
    closed = std::move(st->closed_waiters);
    forever = std::move(st->forever_waiters);
    st->closed_waiters.clear();
    st->forever_waiters.clear();
  }
  try {
    co_await st->listener.close();
  } catch (...) {
    // The descriptor is gone either way.
  }
  detail::settle(forever);
  detail::settle(closed);
  if (err) {
    ExceptionContext ctx;
    ctx.message = "Server accept loop failed";
    ctx.exception = err;
    call_exception_handler(ctx);
  }
}

SocketAddress server_address(std::string_view host, std::uint16_t port) {
  if (host.empty()) return SocketAddress::any_v4(port);
  if (host == "localhost") return SocketAddress::loopback_v4(port);
  try {
    return SocketAddress::parse(host, port);
  } catch (const std::exception&) {
    throw weft::ValueError("start_server: host '" + std::string(host) +
                           "' is not a numeric address, \"localhost\" or \"\"; resolve it with "
                           "weft::getaddrinfo first");
  }
}

}  // namespace

Server start_server(ClientConnected cb, std::string_view host, std::uint16_t port,
                    ServerOptions options) {
  if (!cb) throw weft::ValueError("start_server: empty client_connected_cb");
  auto st = std::make_shared<ServerState>();
  st->cb = std::move(cb);
  st->opts = options;
  ListenOptions lo;
  lo.backlog = options.backlog;
  lo.reuse_port = options.reuse_port;
  st->listener = TcpListener::bind(server_address(host, port), lo);
  st->addr = st->listener.local_address();
  weft::spawn(accept_loop(st), SpawnOptions{"weft-server-accept"});
  return Server(st);
}

SocketAddress Server::address() const {
  if (!s_) throw weft::RuntimeError("Server: empty");
  return s_->addr;
}

bool Server::is_serving() const noexcept {
  return s_ && s_->serving.load(std::memory_order_acquire);
}

void Server::close() noexcept {
  if (!s_) return;
  std::lock_guard g(s_->m);
  if (!s_->serving.exchange(false, std::memory_order_acq_rel) || s_->loop_done) return;
  // Wakes a pending accept (it fails with EINVAL); the loop closes the socket.
  ::shutdown(s_->listener.fd(), SHUT_RDWR);
}

Task<void> Server::wait_closed() {
  std::shared_ptr<ServerState> st = s_;
  if (!st) co_return;
  Promise<void> p;
  Future<void> f = p.get_future();
  {
    std::lock_guard g(st->m);
    if (st->loop_done) co_return;
    st->closed_waiters.push_back(std::move(p));
  }
  co_await f;
}

Task<void> Server::serve_forever() {
  std::shared_ptr<ServerState> st = s_;
  if (!st) throw weft::RuntimeError("Server: empty");
  Promise<void> p;
  Future<void> f = p.get_future();
  {
    std::lock_guard g(st->m);
    if (st->loop_done) co_return;
    st->forever_waiters.push_back(std::move(p));
  }
  try {
    co_await f;
  } catch (const weft::CancelledError&) {
    close();  // asyncio: cancelling serve_forever closes the server
    throw;
  }
}

Task<std::pair<StreamReader, StreamWriter>> open_connection(std::string_view host,
                                                            std::uint16_t port,
                                                            std::ptrdiff_t limit,
                                                            OpTimeout timeout) {
  if (limit <= 0) throw weft::ValueError("open_connection: limit must be > 0");
  TcpStream c = co_await TcpStream::connect(host, port, timeout);
  try {
    c.set_nodelay(true);
  } catch (...) {
  }
  co_return open_stream(c.release(), limit);
}

}  // namespace weft::io
