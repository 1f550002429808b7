// resolve.cpp - getaddrinfo/getnameinfo on the default executor (asyncio runs
// them in the default ThreadPoolExecutor for the same reason: glibc's
// resolver blocks and has no completion-based interface io_uring could drive).
#include <cerrno>
#include <cstring>
#include <weft/executor.hpp>
#include <weft/resolve.hpp>

namespace weft {

namespace {
[[noreturn]] void throw_gai(int rc, const char* call) {
  std::string what = std::string(call) + ": " + gai_strerror(rc);
  if (rc == EAI_SYSTEM) what += std::string(" (") + std::strerror(errno) + ")";
  throw GaiError(rc, what);
}
}  // namespace

Future<std::vector<AddrInfo>> getaddrinfo(std::string host, std::string port, int family,
                                          int socktype, int protocol, int flags) {
  return run_in_executor(
      nullptr, [host = std::move(host), port = std::move(port), family, socktype, protocol, flags] {
        addrinfo hints{};
        hints.ai_family = family;
        hints.ai_socktype = socktype;
        hints.ai_protocol = protocol;
        hints.ai_flags = flags;
        addrinfo* res = nullptr;
        int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(),
                               port.empty() ? nullptr : port.c_str(), &hints, &res);
        if (rc != 0) throw_gai(rc, "getaddrinfo");
        std::vector<AddrInfo> out;
        try {
          for (addrinfo* a = res; a; a = a->ai_next) {
            AddrInfo x;
            x.family = a->ai_family;
            x.socktype = a->ai_socktype;
            x.protocol = a->ai_protocol;
            if (a->ai_canonname) x.canonname = a->ai_canonname;
            x.addrlen = a->ai_addrlen;
            std::memcpy(&x.addr, a->ai_addr, std::min<std::size_t>(a->ai_addrlen, sizeof x.addr));
            out.push_back(std::move(x));
          }
        } catch (...) {
          freeaddrinfo(res);
          throw;
        }
        freeaddrinfo(res);
        return out;
      });
}

Future<std::pair<std::string, std::string>> getnameinfo(const sockaddr* addr, socklen_t len,
                                                        int flags) {
  if (addr == nullptr || len > sizeof(sockaddr_storage))
    throw std::invalid_argument("weft::getnameinfo: bad address");
  sockaddr_storage copy{};
  std::memcpy(&copy, addr, len);
  return run_in_executor(nullptr, [copy, len, flags] {
    char host[NI_MAXHOST];
    char serv[NI_MAXSERV];
    int rc = ::getnameinfo(reinterpret_cast<const sockaddr*>(&copy), len, host, sizeof host, serv,
                           sizeof serv, flags);
    if (rc != 0) throw_gai(rc, "getnameinfo");
    return std::pair<std::string, std::string>(host, serv);
  });
}

}  // namespace weft
