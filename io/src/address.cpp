// address.cpp - SocketAddress (weft/io/address.hpp).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <string>
#include <weft/errors.hpp>
#include <weft/io/address.hpp>

namespace weft::io {

SocketAddress::SocketAddress() noexcept : storage_{}, len_(0) { storage_.ss_family = AF_UNSPEC; }

SocketAddress::SocketAddress(const sockaddr* sa, socklen_t len) : storage_{}, len_(len) {
  if (len > sizeof(storage_))
    throw ValueError("weft::io::SocketAddress: length " + std::to_string(len) +
                     " exceeds sockaddr_storage");
  std::memcpy(&storage_, sa, len);
}

SocketAddress SocketAddress::ipv4(std::string_view ip, std::uint16_t port) {
  SocketAddress a;
  auto* s = reinterpret_cast<sockaddr_in*>(&a.storage_);
  std::string text(ip);
  if (::inet_pton(AF_INET, text.c_str(), &s->sin_addr) != 1)
    throw ValueError("weft::io::SocketAddress::ipv4: not an IPv4 address: '" + text + "'");
  s->sin_family = AF_INET;
  s->sin_port = htons(port);
  a.len_ = sizeof(sockaddr_in);
  return a;
}

SocketAddress SocketAddress::ipv6(std::string_view ip, std::uint16_t port, std::uint32_t scope_id) {
  SocketAddress a;
  auto* s = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  std::string text(ip);
  if (::inet_pton(AF_INET6, text.c_str(), &s->sin6_addr) != 1)
    throw ValueError("weft::io::SocketAddress::ipv6: not an IPv6 address: '" + text + "'");
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  s->sin6_scope_id = scope_id;
  a.len_ = sizeof(sockaddr_in6);
  return a;
}

SocketAddress SocketAddress::parse(std::string_view ip, std::uint16_t port) {
  if (ip.find(':') != std::string_view::npos) return ipv6(ip, port);
  return ipv4(ip, port);
}

SocketAddress SocketAddress::unix_path(std::string_view path) {
  SocketAddress a;
  auto* s = reinterpret_cast<sockaddr_un*>(&a.storage_);
  // A path needs its terminating NUL; an abstract name does not.
  bool abstract = !path.empty() && path[0] == '\0';
  std::size_t room = sizeof(s->sun_path) - (abstract ? 0 : 1);
  if (path.empty() || path.size() > room)
    throw ValueError("weft::io::SocketAddress::unix_path: path length " +
                     std::to_string(path.size()) + " not in 1.." + std::to_string(room));
  s->sun_family = AF_UNIX;
  std::memcpy(s->sun_path, path.data(), path.size());
  a.len_ =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
  return a;
}

std::uint16_t SocketAddress::port() const noexcept {
  if (storage_.ss_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (storage_.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

std::string SocketAddress::ip() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (storage_.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
                sizeof buf);
  } else if (storage_.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
                sizeof buf);
  }
  return buf;
}

std::string SocketAddress::path() const {
  if (storage_.ss_family != AF_UNIX) return {};
  const auto* s = reinterpret_cast<const sockaddr_un*>(&storage_);
  std::size_t off = offsetof(sockaddr_un, sun_path);
  if (len_ <= off) return {};
  std::size_t n = len_ - off;
  if (s->sun_path[0] != '\0') n = ::strnlen(s->sun_path, n);
  return std::string(s->sun_path, n);
}

std::string SocketAddress::to_string() const {
  switch (storage_.ss_family) {
    case AF_INET:
      return ip() + ":" + std::to_string(port());
    case AF_INET6:
      return "[" + ip() + "]:" + std::to_string(port());
    case AF_UNIX: {
      std::string p = path();
      if (!p.empty() && p[0] == '\0') p[0] = '@';
      return "unix:" + p;
    }
    default:
      return "unspec";
  }
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
}

}  // namespace weft::io
