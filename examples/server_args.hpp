// examples/server_args.hpp - the command line the example servers share:
//
//   <server> [--host H] [--port P] [--workers N]
//
// (the contract the benchmark runner relies on: bench/README.md). Each server
// prints "listening on <address>" once it accepts connections.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

struct ServerArgs {
  const char* host = "127.0.0.1";
  std::uint16_t port = 8888;
  unsigned workers = 0;  // 0: one per core
};

inline std::optional<ServerArgs> server_usage(const char* prog) {
  std::fprintf(stderr, "usage: %s [--host H] [--port 0-65535] [--workers N]\n", prog);
  return std::nullopt;
}

/// Parses argv; prints the usage and returns nothing on a bad argument.
inline std::optional<ServerArgs> parse_server_args(int argc, char** argv) {
  ServerArgs a;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) return server_usage(argv[0]);
    const char* v = argv[i + 1];
    char* end = nullptr;
    if (std::strcmp(argv[i], "--port") == 0) {
      unsigned long p = std::strtoul(v, &end, 10);
      if (*end != '\0' || p > 65535) return server_usage(argv[0]);
      a.port = static_cast<std::uint16_t>(p);
    } else if (std::strcmp(argv[i], "--workers") == 0) {
      unsigned long n = std::strtoul(v, &end, 10);
      if (*end != '\0' || n > 1024) return server_usage(argv[0]);
      a.workers = static_cast<unsigned>(n);
    } else if (std::strcmp(argv[i], "--host") == 0) {
      a.host = v;
    } else {
      return server_usage(argv[0]);
    }
  }
  return a;
}
