// examples/server_main.hpp - what the example servers share: the command line
//
//   <server> --port P [--workers N] [--host H] [RuntimeOptions knob flags]
//
// (the contract the benchmark runner relies on: README.md, "Server
// workloads"): --port is required (0 lets the kernel pick one), --workers
// defaults to 2 and --host to 127.0.0.1, and every RuntimeOptions knob has
// its flag (weft/runtime_flags.hpp), so bench/run can tune a server as it
// tunes weft_bench. And a main that serves one
// connection handler, printing "listening on <address>" once it accepts
// connections, until SIGTERM or SIGINT, and exits 0 on either:
// - SIGTERM: a weft signal handler (io::add_signal_handler) closes the
//   server, serve_forever returns, and run() cancels the connections still
//   open as it shuts down;
// - SIGINT: run()'s Ctrl-C handling cancels the main task (which closes the
//   server) and throws weft::KeyboardInterrupt, which derives from no
//   std::exception and so is caught on its own.
// Both handlers are in place before "listening on" is printed, so a client
// that waits for that line (or for a connect to succeed) may signal at once.
#pragma once

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <weft/io/server.hpp>
#include <weft/io/signal.hpp>
#include <weft/weft.hpp>

struct ServerArgs {
  const char* host = "127.0.0.1";
  std::uint16_t port = 0;
  // 2, as the README promises: the machines weft is measured on have 2 cores,
  // and a fixed default keeps a run's shape the same whatever the machine.
  unsigned workers = 2;
  weft::RuntimeOptions options;  // the knob flags given (workers is set from --workers)
};

inline std::optional<ServerArgs> server_usage(const char* prog) {
  std::fprintf(stderr,
               "usage: %s --port 0-65535 [--workers 1-1024] [--host H]\n"
               "and every RuntimeOptions knob (weft/runtime_flags.hpp):\n%s",
               prog, weft::runtime_flags_usage());
  return std::nullopt;
}

/// Parses argv; prints the usage and returns nothing on a bad argument or a
/// missing --port.
inline std::optional<ServerArgs> parse_server_args(int argc, char** argv) {
  ServerArgs a;
  bool have_port = false;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) return server_usage(argv[0]);
    const char* v = argv[i + 1];
    char* end = nullptr;
    if (std::strcmp(argv[i], "--port") == 0) {
      unsigned long p = std::strtoul(v, &end, 10);
      if (*v == '\0' || *end != '\0' || p > 65535) return server_usage(argv[0]);
      a.port = static_cast<std::uint16_t>(p);
      have_port = true;
    } else if (std::strcmp(argv[i], "--workers") == 0) {
      unsigned long n = std::strtoul(v, &end, 10);
      if (*v == '\0' || *end != '\0' || n == 0 || n > 1024) return server_usage(argv[0]);
      a.workers = static_cast<unsigned>(n);
    } else if (std::strcmp(argv[i], "--host") == 0) {
      a.host = v;
    } else {
      try {
        if (!weft::set_runtime_flag(a.options, argv[i], v)) return server_usage(argv[0]);
      } catch (const std::invalid_argument& e) {
        server_usage(argv[0]);
        std::fprintf(stderr, "%s\n", e.what());  // after the usage, which comes first
        return std::nullopt;
      }
    }
  }
  if (!have_port) return server_usage(argv[0]);
  return a;
}

/// Serves `handler` on host:port until SIGTERM closes the server (returns)
/// or SIGINT cancels this task (throws CancelledError).
inline weft::Task<void> serve(weft::io::ClientConnected* handler, const char* host,
                              std::uint16_t port) {
  weft::io::Server server = weft::io::start_server(*handler, host, port);
  // Server::close may be called from any thread and is idempotent, so a
  // second SIGTERM during shutdown is harmless. run()'s shutdown removes the
  // handler (its reader task is cancelled) and restores SIGTERM's default.
  weft::io::add_signal_handler(SIGTERM, [server]() mutable { server.close(); });
  std::printf("listening on %s\n", server.address().to_string().c_str());
  std::fflush(stdout);
  co_await server.serve_forever();
}

/// The example servers' main(): parses the arguments, then runs `handler`
/// on a runtime with the asked number of workers until SIGTERM or SIGINT.
/// Returns the exit status: 0 after either signal, 1 if serving failed (the
/// error on stderr), 2 for bad arguments. Call it from main() only.
inline int server_main(int argc, char** argv, const char* name, weft::io::ClientConnected handler) {
  std::optional<ServerArgs> args = parse_server_args(argc, argv);
  if (!args) return 2;
  weft::RuntimeOptions options = args->options;
  options.workers = args->workers;
  try {
    weft::run(serve(&handler, args->host, args->port), options);
  } catch (const weft::KeyboardInterrupt&) {
    return 0;  // SIGINT: the server closed as the main task was cancelled
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
  return 0;  // SIGTERM: serve_forever returned after the server closed
}
