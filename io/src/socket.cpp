// socket.cpp - Socket, StreamSocket, TcpStream/TcpListener, UnixStream/
// UnixListener and UdpSocket (weft/io/socket.hpp, tcp.hpp, unix.hpp, udp.hpp).
//
// socket/bind/listen/setsockopt are plain system calls: none of them sleeps,
// and liburing 2.3 has no prep helper for bind or listen (kernel 6.11 added
// the opcodes). Everything that waits for the network goes through the ring.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <weft/errors.hpp>
#include <weft/io/tcp.hpp>
#include <weft/io/udp.hpp>
#include <weft/io/unix.hpp>
#include <weft/resolve.hpp>
#include <weft/timeout.hpp>

namespace weft::io {

namespace {

[[noreturn]] void throw_errno(const char* op) { throw_error(errno, op); }

int make_socket(int family, int type) {
  int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("socket");
  return fd;
}

bool is_ip(const SocketAddress& a) noexcept {
  return a.family() == AF_INET || a.family() == AF_INET6;
}

/// A numeric address for host, or nullopt if it needs the resolver.
std::optional<SocketAddress> numeric(std::string_view host, std::uint16_t port) {
  std::string h(host);
  in6_addr a6{};
  in_addr a4{};
  if (::inet_pton(AF_INET, h.c_str(), &a4) == 1) return SocketAddress::ipv4(host, port);
  if (::inet_pton(AF_INET6, h.c_str(), &a6) == 1) return SocketAddress::ipv6(host, port);
  return std::nullopt;
}

Task<std::vector<SocketAddress>> resolve(const std::string& host, std::uint16_t port, int flags,
                                         detail::Deadline deadline) {
  std::vector<SocketAddress> out;
  if (auto n = numeric(host, port)) {
    out.push_back(*n);
    co_return out;
  }
  auto fut = weft::getaddrinfo(host, std::to_string(port), AF_UNSPEC, SOCK_STREAM, 0, flags);
  std::vector<AddrInfo> infos;
  if (deadline.set) {
    infos = co_await weft::wait_for(std::move(fut), deadline.remaining());
  } else {
    infos = co_await fut;
  }
  for (const AddrInfo& ai : infos)
    out.emplace_back(reinterpret_cast<const sockaddr*>(&ai.addr), ai.addrlen);
  co_return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Socket

SocketAddress Socket::local_address() const {
  SocketAddress a;
  *a.size_ptr() = SocketAddress::capacity();
  if (::getsockname(fd_, a.data(), a.size_ptr()) != 0) throw_errno("getsockname");
  return a;
}

SocketAddress Socket::peer_address() const {
  SocketAddress a;
  *a.size_ptr() = SocketAddress::capacity();
  if (::getpeername(fd_, a.data(), a.size_ptr()) != 0) throw_errno("getpeername");
  return a;
}

void Socket::set_option(int level, int name, int value) {
  if (::setsockopt(fd_, level, name, &value, sizeof value) != 0) throw_errno("setsockopt");
}

int Socket::get_option(int level, int name) const {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd_, level, name, &value, &len) != 0) throw_errno("getsockopt");
  return value;
}

int Socket::take_error() const { return get_option(SOL_SOCKET, SO_ERROR); }

// ---------------------------------------------------------------------------
// StreamSocket

Task<void> StreamSocket::send_all(ConstBuffer buf, OpTimeout timeout) const {
  auto deadline = detail::Deadline::after(timeout, "send");
  while (buf.size > 0) {
    std::size_t n = co_await send(buf, deadline.remaining());
    buf = buf + n;
  }
}

Task<void> StreamSocket::recv_exact(MutableBuffer buf, OpTimeout timeout) const {
  auto deadline = detail::Deadline::after(timeout, "recv");
  std::size_t want = buf.size;
  while (buf.size > 0) {
    std::size_t n = co_await recv(buf, deadline.remaining());
    if (n == 0)
      throw EndOfFileError("recv_exact: stream ended after " + std::to_string(want - buf.size) +
                           " of " + std::to_string(want) + " bytes");
    buf = buf + n;
  }
}

// ---------------------------------------------------------------------------
// TCP

Task<TcpStream> TcpStream::connect(SocketAddress addr, OpTimeout timeout) {
  if (!is_ip(addr))
    throw ValueError("weft::io::TcpStream::connect: not an IPv4/IPv6 address: " + addr.to_string());
  TcpStream s(make_socket(addr.family(), SOCK_STREAM));
  co_await detail::Op<detail::ConnectPrep>(detail::ConnectPrep{s.fd(), addr}, timeout);
  co_return s;
}

Task<TcpStream> TcpStream::connect(std::string_view host, std::uint16_t port, OpTimeout timeout) {
  auto deadline = detail::Deadline::after(timeout, "connect");
  std::string h(host);  // copied before the first suspension
  std::vector<SocketAddress> addrs = co_await resolve(h, port, 0, deadline);
  std::exception_ptr last;
  for (const SocketAddress& a : addrs) {
    try {
      co_return co_await connect(a, deadline.remaining());
    } catch (const std::system_error&) {
      last = std::current_exception();
    }
  }
  if (last) std::rethrow_exception(last);
  throw std::system_error(EADDRNOTAVAIL, std::system_category(), "connect: no address for " + h);
}

Task<void> TcpStream::send_all_zc(ConstBuffer buf, OpTimeout timeout) const {
  auto deadline = detail::Deadline::after(timeout, "send_zc");
  while (buf.size > 0) {
    std::size_t n = co_await send_zc(buf, deadline.remaining());
    buf = buf + n;
  }
}

void TcpStream::set_nodelay(bool on) { set_option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0); }
bool TcpStream::nodelay() const { return get_option(IPPROTO_TCP, TCP_NODELAY) != 0; }

void TcpStream::set_keepalive(bool on, int idle_seconds) {
  set_option(SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0);
  if (on && idle_seconds > 0) set_option(IPPROTO_TCP, TCP_KEEPIDLE, idle_seconds);
}
bool TcpStream::keepalive() const { return get_option(SOL_SOCKET, SO_KEEPALIVE) != 0; }

TcpListener TcpListener::bind(const SocketAddress& addr, ListenOptions options) {
  if (!is_ip(addr))
    throw ValueError("weft::io::TcpListener::bind: not an IPv4/IPv6 address: " + addr.to_string());
  TcpListener l(make_socket(addr.family(), SOCK_STREAM), options.backlog);
  if (options.reuse_address) l.set_option(SOL_SOCKET, SO_REUSEADDR, 1);
  if (options.reuse_port) l.set_option(SOL_SOCKET, SO_REUSEPORT, 1);
  if (addr.family() == AF_INET6) l.set_option(IPPROTO_IPV6, IPV6_V6ONLY, options.v6_only ? 1 : 0);
  if (::bind(l.fd(), addr.data(), addr.size()) != 0) throw_errno("bind");
  if (::listen(l.fd(), options.backlog) != 0) throw_errno("listen");
  return l;
}

Task<TcpListener> TcpListener::bind(std::string_view host, std::uint16_t port,
                                    ListenOptions options) {
  std::string h(host.empty() ? std::string_view("0.0.0.0") : host);
  std::vector<SocketAddress> addrs = co_await resolve(h, port, AI_PASSIVE, detail::Deadline{});
  std::exception_ptr last;
  for (const SocketAddress& a : addrs) {
    try {
      co_return bind(a, options);
    } catch (const std::system_error&) {
      last = std::current_exception();
    }
  }
  if (last) std::rethrow_exception(last);
  throw std::system_error(EADDRNOTAVAIL, std::system_category(), "bind: no address for " + h);
}

// ---------------------------------------------------------------------------
// Unix

Task<UnixStream> UnixStream::connect(SocketAddress addr, OpTimeout timeout) {
  if (addr.family() != AF_UNIX)
    throw ValueError("weft::io::UnixStream::connect: not a Unix address: " + addr.to_string());
  UnixStream s(make_socket(AF_UNIX, SOCK_STREAM));
  co_await detail::Op<detail::ConnectPrep>(detail::ConnectPrep{s.fd(), addr}, timeout);
  co_return s;
}

std::pair<UnixStream, UnixStream> UnixStream::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw_errno("socketpair");
  return {UnixStream(fds[0]), UnixStream(fds[1])};
}

UnixListener UnixListener::bind(const SocketAddress& addr, int backlog) {
  if (addr.family() != AF_UNIX)
    throw ValueError("weft::io::UnixListener::bind: not a Unix address: " + addr.to_string());
  std::string p = addr.path();
  if (!p.empty() && p[0] != '\0') {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(p.c_str());
  }
  UnixListener l(make_socket(AF_UNIX, SOCK_STREAM), backlog);
  if (::bind(l.fd(), addr.data(), addr.size()) != 0) throw_errno("bind");
  if (::listen(l.fd(), backlog) != 0) throw_errno("listen");
  return l;
}

// ---------------------------------------------------------------------------
// UDP

UdpSocket UdpSocket::open(int family) {
  if (family != AF_INET && family != AF_INET6)
    throw ValueError("weft::io::UdpSocket::open: family must be AF_INET or AF_INET6");
  return UdpSocket(make_socket(family, SOCK_DGRAM));
}

UdpSocket UdpSocket::bind(const SocketAddress& addr) {
  if (!is_ip(addr))
    throw ValueError("weft::io::UdpSocket::bind: not an IPv4/IPv6 address: " + addr.to_string());
  UdpSocket s(make_socket(addr.family(), SOCK_DGRAM));
  if (::bind(s.fd(), addr.data(), addr.size()) != 0) throw_errno("bind");
  return s;
}

void UdpSocket::connect(const SocketAddress& addr) {
  if (::connect(fd_, addr.data(), addr.size()) != 0) throw_errno("connect");
}

}  // namespace weft::io
