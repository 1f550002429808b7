// weft/io/udp.hpp - UdpSocket: datagrams over IPv4 or IPv6.
//
//   auto s = weft::io::UdpSocket::bind(weft::io::SocketAddress::loopback_v4(0));
//   co_await s.send_to("ping", peer);
//   char buf[1500];
//   auto [n, from, truncated] = co_await s.recv_from(buf);
//
// A datagram larger than the buffer is truncated (the rest is lost, as with
// recvfrom(2)); RecvFromResult::truncated says so.
//
// Threads and closing: see weft/io/socket.hpp.
#pragma once

#include <weft/io/socket.hpp>

namespace weft::io {

class UdpSocket : public Socket {
 public:
  UdpSocket() noexcept = default;
  explicit UdpSocket(int fd) noexcept : Socket(fd) {}

  /// A UDP socket bound to `addr` (port 0: any free port). Throws
  /// std::system_error, ValueError for a non-IP address. Any thread.
  static UdpSocket bind(const SocketAddress& addr);
  /// An unbound UDP socket of the family (AF_INET / AF_INET6).
  static UdpSocket open(int family = AF_INET);
  /// connect(2): sets the default destination and filters what recv sees.
  void connect(const SocketAddress& addr);

  detail::Op<detail::SendToPrep> send_to(ConstBuffer buf, const SocketAddress& to,
                                         OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::SendToPrep>(detail::SendToPrep{fd_, buf, to}, timeout);
  }
  detail::Op<detail::RecvFromPrep> recv_from(MutableBuffer buf,
                                             OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::RecvFromPrep>(detail::RecvFromPrep{fd_, buf}, timeout);
  }
  /// For a connected socket.
  detail::Op<detail::SendPrep> send(ConstBuffer buf, OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::SendPrep>(detail::SendPrep{fd_, buf, MSG_NOSIGNAL}, timeout);
  }
  detail::Op<detail::RecvPrep> recv(MutableBuffer buf, OpTimeout timeout = std::nullopt) const {
    return detail::Op<detail::RecvPrep>(detail::RecvPrep{fd_, buf, 0}, timeout);
  }
};

}  // namespace weft::io
