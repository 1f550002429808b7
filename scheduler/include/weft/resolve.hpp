// weft/resolve.hpp - getaddrinfo / getnameinfo as awaitables.
//
// As in asyncio (loop.getaddrinfo, loop.getnameinfo), the resolver's
// blocking C calls run on the runtime's default executor and the task
// awaits the returned future:
//
//   auto addrs = co_await weft::getaddrinfo("localhost", "80", AF_INET, SOCK_STREAM);
//
// Failures raise GaiError (asyncio's socket.gaierror) carrying the EAI_*
// code and gai_strerror's text; EAI_SYSTEM carries errno's text too.
// Threads: call from a weft task's worker (they use its default executor).
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <string>
#include <utility>
#include <vector>
#include <weft/errors.hpp>
#include <weft/future.hpp>

namespace weft {

/// One result of getaddrinfo (asyncio's (family, type, proto, canonname, sockaddr)).
struct AddrInfo {
  int family = 0;
  int socktype = 0;
  int protocol = 0;
  std::string canonname;
  sockaddr_storage addr{};
  socklen_t addrlen = 0;
};

/// socket.gaierror: a resolver failure with its EAI_* code.
class GaiError : public Error {
 public:
  GaiError(int code, const std::string& what) : Error(what), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

/// Resolves host/port on the default executor. Empty host or port means
/// none (NULL to the C call).
Future<std::vector<AddrInfo>> getaddrinfo(std::string host, std::string port, int family = 0,
                                          int socktype = 0, int protocol = 0, int flags = 0);
/// Reverse-resolves addr on the default executor: (host, service).
Future<std::pair<std::string, std::string>> getnameinfo(const sockaddr* addr, socklen_t len,
                                                        int flags = 0);

}  // namespace weft
