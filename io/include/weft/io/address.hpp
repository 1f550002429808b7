// weft/io/address.hpp - SocketAddress: an IPv4, IPv6 or Unix socket address.
//
// A sockaddr_storage and its length, by value (trivially copyable, so it can
// be passed to coroutines inside a co_await expression). Constructed from
// text without any name resolution; host names go through
// weft::getaddrinfo (TcpStream::connect(host, port) does it for you).
//
// Threads: a plain value.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace weft::io {

class SocketAddress {
 public:
  /// AF_UNSPEC, size 0.
  SocketAddress() noexcept;
  /// Copies `len` bytes of `sa`. Throws ValueError if len exceeds
  /// sizeof(sockaddr_storage).
  SocketAddress(const sockaddr* sa, socklen_t len);

  /// A numeric IPv4 address ("127.0.0.1") and port. ValueError if `ip` is not one.
  static SocketAddress ipv4(std::string_view ip, std::uint16_t port);
  /// A numeric IPv6 address ("::1", without brackets) and port.
  static SocketAddress ipv6(std::string_view ip, std::uint16_t port, std::uint32_t scope_id = 0);
  /// Either of the two, told apart by the text (a ':' means IPv6).
  static SocketAddress parse(std::string_view ip, std::uint16_t port);
  /// A Unix socket path; a leading '\0' makes it an abstract address.
  /// ValueError if it does not fit sun_path (107 bytes).
  static SocketAddress unix_path(std::string_view path);
  static SocketAddress loopback_v4(std::uint16_t port = 0) { return ipv4("127.0.0.1", port); }
  static SocketAddress loopback_v6(std::uint16_t port = 0) { return ipv6("::1", port); }
  static SocketAddress any_v4(std::uint16_t port = 0) { return ipv4("0.0.0.0", port); }
  static SocketAddress any_v6(std::uint16_t port = 0) { return ipv6("::", port); }

  /// AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC.
  int family() const noexcept { return storage_.ss_family; }
  /// The port (IP families), 0 otherwise.
  std::uint16_t port() const noexcept;
  /// The numeric address ("127.0.0.1", "::1"); "" for other families.
  std::string ip() const;
  /// The Unix path (abstract ones start with '\0'); "" for other families
  /// and for unnamed Unix sockets.
  std::string path() const;
  /// "127.0.0.1:80", "[::1]:80", "unix:/tmp/s", "unix:@abstract", "unspec".
  std::string to_string() const;

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return len_; }
  /// For calls that fill the address in: set to capacity() before, read after.
  socklen_t* size_ptr() noexcept { return &len_; }
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t len_;
};

}  // namespace weft::io
