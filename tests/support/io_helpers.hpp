// tests/support/io_helpers.hpp - socket set-ups shared by the io tests.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <utility>
#include <weft/io.hpp>
#include <weft/weft.hpp>

namespace weft_test {

/// A connected loopback TCP pair: (client, server side). Call from a task.
inline weft::Task<std::pair<weft::io::TcpStream, weft::io::TcpStream>> tcp_pair() {
  namespace io = weft::io;
  auto l = io::TcpListener::bind(io::SocketAddress::loopback_v4(0));
  auto accepted = weft::spawn([](const io::TcpListener* lp) -> weft::Task<io::TcpStream> {
    co_return co_await lp->accept();
  }(&l));
  io::TcpStream c = co_await io::TcpStream::connect(l.local_address());
  io::TcpStream s = co_await accepted;
  co_return std::pair<io::TcpStream, io::TcpStream>(std::move(c), std::move(s));
}

/// Abortive close: SO_LINGER {1, 0} makes close(2) send a RST.
inline void reset_close(weft::io::Socket& s) {
  linger lg{1, 0};
  REQUIRE(::setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
  ::close(s.release());
}

}  // namespace weft_test
