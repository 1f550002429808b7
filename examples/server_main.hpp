// examples/server_main.hpp - what the example servers share: the command line
//
//   <server> [--host H] [--port P] [--workers N]
//
// (the contract the benchmark runner relies on: bench/README.md), and a main
// that serves one connection handler until the process is stopped, printing
// "listening on <address>" once it accepts connections.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <weft/io/server.hpp>
#include <weft/weft.hpp>

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

/// Serves `handler` on host:port until the process is stopped.
inline weft::Task<void> serve(weft::io::ClientConnected* handler, const char* host,
                              std::uint16_t port) {
  weft::io::Server server = weft::io::start_server(*handler, host, port);
  std::printf("listening on %s\n", server.address().to_string().c_str());
  std::fflush(stdout);
  co_await server.serve_forever();
}

/// The example servers' main(): parses the arguments, then runs `handler`
/// on a runtime with the asked number of workers. Returns the exit status.
inline int server_main(int argc, char** argv, const char* name, weft::io::ClientConnected handler) {
  std::optional<ServerArgs> args = parse_server_args(argc, argv);
  if (!args) return 2;
  weft::RuntimeOptions options;
  options.workers = args->workers;
  try {
    weft::run(serve(&handler, args->host, args->port), options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
  return 0;
}
