// The example servers, each started as its own process on a free port and
// driven by a plain blocking-socket client (no weft on the client side):
// echo_server echoes, http_hello answers keep-alive and pipelined requests,
// resp_server speaks RESP for PING, ECHO, SET, GET, DEL, INCR (inline and
// multibulk, pipelined). Every server exits 0 on SIGTERM and on SIGINT, and 2
// without --port (README, "Server workloads"). The binaries' paths come from
// CMake. fd_check.hpp fails the file if a test case leaks a descriptor (the
// clients' sockets, the pipes to the servers' stdout and stderr).
#include "../support/fd_check.hpp"
// (fd_check.hpp first: it configures Catch)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

// Starts `path` with `args` (argv[0] is added) with SIGINT and SIGTERM at
// their default dispositions and nothing blocked, as a shell would start it
// (the test runner's own dispositions and mask must not leak into the child:
// run() takes Ctrl-C only when SIGINT has its default action). `redirect`
// names the child's descriptor (1 or 2) whose output comes back through the
// returned pipe's read end.
pid_t spawn_server(const char* path, const std::vector<std::string>& args, int redirect,
                   int* read_end) {
  int out[2] = {-1, -1};
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(out[1], redirect);  // dup2 clears O_CLOEXEC on the copy
    ::execv(path, argv.data());
    std::perror("exec");
    ::_exit(127);
  }
  ::close(out[1]);
  *read_end = out[0];
  return pid;
}

// Reads `fd` until `stop` (not kept), EOF, or 30 s without a byte.
std::string read_until(int fd, char stop) {
  std::string s;
  char c;
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 30'000) == 1 && ::read(fd, &c, 1) == 1 && c != stop) s += c;
  return s;
}

// Waits for `pid` to end, polling waitpid(WNOHANG) for at most `limit` so a
// hung process fails the test instead of hanging it. Returns the wait status,
// or nothing if it was still running (it is then killed and reaped, so no
// test leaves a server behind).
std::optional<int> reap_within(pid_t pid, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) return st;
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a poll, not a synchronisation
  }
  ::kill(pid, SIGKILL);
  int ignored = 0;
  ::waitpid(pid, &ignored, 0);
  return std::nullopt;
}

// Generous: a server's shutdown takes milliseconds; this bounds a hang.
constexpr std::chrono::seconds kExitLimit{30};

// A server process: started with --port 0 --workers 2; its first stdout line
// "listening on 127.0.0.1:<port>" says where (and that it is ready: its
// SIGTERM and SIGINT handling is in place by then).
class ServerProcess {
 public:
  explicit ServerProcess(const char* path, std::vector<std::string> extra = {}) {
    int out = -1;
    std::vector<std::string> args = {"--port", "0", "--workers", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = spawn_server(path, args, 1, &out);
    // A server that never says where it listens fails here after 30 s.
    std::string line = read_until(out, '\n');
    ::close(out);
    const std::size_t colon = line.rfind(':');
    if (line.rfind("listening on ", 0) != 0 || colon == std::string::npos) {
      ::kill(pid_, SIGKILL);  // the destructor of a half-built object does not run
      reap_within(pid_, kExitLimit);
      FAIL("the server did not say where it listens; it said: " << line);
    }
    port_ = static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
  }
  ~ServerProcess() {
    if (pid_ < 0) return;
    ::kill(pid_, SIGTERM);
    reap_within(pid_, kExitLimit);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  std::uint16_t port() const { return port_; }

  /// Sends `signo` and returns the wait status, or nothing if the server had
  /// not ended within kExitLimit (it is then killed).
  std::optional<int> stop_with(int signo) {
    REQUIRE(::kill(pid_, signo) == 0);
    return reap_within(std::exchange(pid_, -1), kExitLimit);
  }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{10, 0};  // a hung server fails the test instead of hanging it
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Client() { ::close(fd_); }
  void send(const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      REQUIRE(n > 0);
      off += static_cast<std::size_t>(n);
    }
  }
  /// Reads until `n` bytes arrived (or EOF / timeout: fewer).
  std::string recv_n(std::size_t n) {
    std::string s;
    char buf[4096];
    while (s.size() < n) {
      ssize_t r = ::recv(fd_, buf, std::min(sizeof buf, n - s.size()), 0);
      if (r <= 0) break;
      s.append(buf, static_cast<std::size_t>(r));
    }
    return s;
  }
  /// True if the server closed the connection (recv returns 0).
  bool closed_by_peer() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  /// Closes with SO_LINGER 0, so the server's side gets a reset (RST).
  void reset() {
    linger l{1, 0};
    REQUIRE(::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0);
    ::close(std::exchange(fd_, -1));
  }

 private:
  int fd_ = -1;
};

const std::string kHello =
    "HTTP/1.1 200 OK\r\nServer: weft\r\nContent-Type: text/plain\r\nContent-Length: "
    "13\r\n\r\nHello, World!";

}  // namespace

TEST_CASE("echo_server echoes every byte on several connections", "[example]") {
  ::signal(SIGPIPE, SIG_IGN);
  ServerProcess server(WEFT_ECHO_SERVER);
  Client a(server.port()), b(server.port());
  for (int i = 0; i < 100; ++i) {
    std::string msg =
        "message " + std::to_string(i) + std::string(static_cast<std::size_t>(i), 'x');
    a.send(msg);
    b.send(msg);
    CHECK(a.recv_n(msg.size()) == msg);
    CHECK(b.recv_n(msg.size()) == msg);
  }
  std::string big(1 << 20, 'q');
  a.send(big);
  CHECK(a.recv_n(big.size()) == big);
  a.shutdown_write();
  CHECK(a.closed_by_peer());
}

TEST_CASE("http_hello answers keep-alive and pipelined requests", "[example]") {
  ::signal(SIGPIPE, SIG_IGN);
  ServerProcess server(WEFT_HTTP_HELLO);
  Client c(server.port());
  const std::string get = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  c.send(get);
  CHECK(c.recv_n(kHello.size()) == kHello);
  c.send(get);  // the same connection again (keep-alive)
  CHECK(c.recv_n(kHello.size()) == kHello);
  std::string pipelined;
  for (int i = 0; i < 16; ++i) pipelined += get;
  c.send(pipelined);
  std::string all = c.recv_n(16 * kHello.size());
  std::string expected;
  for (int i = 0; i < 16; ++i) expected += kHello;
  CHECK(all == expected);
  // A body is read and skipped; "Connection: close" ends the connection.
  c.send(
      "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nConnection: "
      "close\r\n\r\n");
  CHECK(c.recv_n(2 * kHello.size()) == kHello + kHello);
  CHECK(c.closed_by_peer());

  Client bad(server.port());
  bad.send("NONSENSE\r\n\r\n");
  std::string r = bad.recv_n(12);
  CHECK(r == "HTTP/1.1 400");
}

TEST_CASE("resp_server: PING, ECHO, SET, GET, DEL, INCR, inline and pipelined", "[example]") {
  ::signal(SIGPIPE, SIG_IGN);
  ServerProcess server(WEFT_RESP_SERVER);
  Client c(server.port());
  auto roundtrip = [&c](const std::string& req, const std::string& expected) {
    c.send(req);
    CHECK(c.recv_n(expected.size()) == expected);
  };
  roundtrip("PING\r\n", "+PONG\r\n");
  roundtrip("*1\r\n$4\r\nPING\r\n", "+PONG\r\n");
  roundtrip("*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n", "$5\r\nhello\r\n");
  // A binary-safe value: it holds "\r\n" itself.
  roundtrip("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\nv\r\nx\r\n", "+OK\r\n");
  roundtrip("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "$4\r\nv\r\nx\r\n");
  roundtrip("*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n", "$-1\r\n");
  roundtrip("*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n", ":1\r\n");
  roundtrip("INCR n\r\n", ":2\r\n");
  roundtrip("INCR k\r\n", "-ERR value is not an integer or out of range\r\n");
  roundtrip("*3\r\n$3\r\nDEL\r\n$1\r\nk\r\n$1\r\nn\r\n", ":2\r\n");
  roundtrip("FLUSHALL\r\n", "-ERR unknown command 'FLUSHALL'\r\n");
  std::string pipelined, expected;
  for (int i = 0; i < 16; ++i) {
    pipelined += "*3\r\n$3\r\nSET\r\n$2\r\nk" + std::to_string(i % 10) + "\r\n$1\r\n" +
                 std::to_string(i % 10) + "\r\n";
    pipelined += "*2\r\n$3\r\nGET\r\n$2\r\nk" + std::to_string(i % 10) + "\r\n";
    expected += "+OK\r\n$1\r\n" + std::to_string(i % 10) + "\r\n";
  }
  roundtrip(pipelined, expected);
  // The map is shared: a second connection (maybe on the other worker) sees it.
  Client d(server.port());
  d.send("GET k3\r\n");
  CHECK(d.recv_n(7) == "$1\r\n3\r\n");
  roundtrip("*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n");
  CHECK(c.closed_by_peer());
}

namespace {

struct NamedServer {
  const char* name;
  const char* path;
};
const NamedServer kServers[] = {{"echo_server", WEFT_ECHO_SERVER},
                                {"http_hello", WEFT_HTTP_HELLO},
                                {"resp_server", WEFT_RESP_SERVER}};

// Starts each server, opens a connection (so a handler is waiting on a read
// when the signal comes: shutdown must cancel it), sends `signo` and expects
// exit status 0, and not death by the signal nor std::terminate's SIGABRT.
void check_exit_zero_on(int signo) {
  ::signal(SIGPIPE, SIG_IGN);
  for (const NamedServer& s : kServers) {
    INFO(s.name << " and signal " << signo);
    ServerProcess server(s.path);
    Client c(server.port());
    std::optional<int> st = server.stop_with(signo);
    REQUIRE(st.has_value());  // ended within kExitLimit
    if (WIFSIGNALED(*st)) FAIL("killed by signal " << WTERMSIG(*st));
    REQUIRE(WIFEXITED(*st));
    CHECK(WEXITSTATUS(*st) == 0);
  }
}

}  // namespace

TEST_CASE("servers: run until SIGTERM, exit 0 on it", "[example]") { check_exit_zero_on(SIGTERM); }

TEST_CASE("servers: run until SIGINT, exit 0 on it", "[example]") { check_exit_zero_on(SIGINT); }

// Every RuntimeOptions knob flag (weft/runtime_flags.hpp), each away from its
// default: the servers accept them all (bench/run passes its knobs on), still
// serve, and still exit 0 on SIGTERM.
TEST_CASE("servers: accept every RuntimeOptions knob flag and still serve", "[example]") {
  ::signal(SIGPIPE, SIG_IGN);
  const std::pair<const char*, const char*> set[] = {
      {"--ring-entries", "128"},   {"--lifo-slot", "0"},
      {"--lifo-cap", "5"},         {"--global-queue-interval", "17"},
      {"--event-interval", "13"},  {"--max-searching", "1"},
      {"--spin-before-park", "0"}, {"--wake-with-eventfd", "1"},
      {"--trim-threshold", "0"},   {"--park-spin-us", "10"},
      {"--sibling-spin-us", "0"},  {"--blocking-idle-spin-us", "0"},
      {"--help-cpu-pools", "1"},   {"--refill-frames", "0"},
      {"--eager-file-submit", "0"}};
  std::vector<std::string> knobs;
  for (const auto& [flag, value] : set) {
    knobs.push_back(flag);
    knobs.push_back(value);
  }
  for (const NamedServer& s : kServers) {
    INFO(s.name);
    ServerProcess server(s.path, knobs);
    {
      Client c(server.port());
      if (std::string(s.name) == "echo_server") {
        c.send("knobs\n");
        CHECK(c.recv_n(6) == "knobs\n");
      } else if (std::string(s.name) == "resp_server") {
        c.send("PING\r\n");
        CHECK(c.recv_n(7) == "+PONG\r\n");
      } else {
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(c.recv_n(15) == "HTTP/1.1 200 OK");
      }
    }
    std::optional<int> st = server.stop_with(SIGTERM);
    REQUIRE(st.has_value());
    REQUIRE(WIFEXITED(*st));
    CHECK(WEXITSTATUS(*st) == 0);
  }
}

TEST_CASE("servers: --port is required, bad arguments print the usage and exit 2", "[example]") {
  const std::vector<std::vector<std::string>> bad = {
      {},                                    // no --port
      {"--workers", "2"},                    // still no --port
      {"--port", "70000"},                   // out of range
      {"--port", "0", "--workers", "0"},     // no workers
      {"--port", "0", "--workers", "x"},     // not a number
      {"--port"},                            // no value
      {"--port", "0", "--frobnicate", "1"},  // unknown option
      {"--port", "0", "--lifo-cap", "x"},    // a knob's value not a number
      {"--port", "0", "--lifo-slot", "2"}    // an on/off knob given 2
  };
  for (const NamedServer& s : kServers) {
    for (const auto& args : bad) {
      std::string shown;
      for (const std::string& a : args) shown += " " + a;
      INFO(s.name << shown);
      int err = -1;
      pid_t pid = spawn_server(s.path, args, 2, &err);
      std::string said = read_until(err, '\0');  // to EOF: the server has ended
      ::close(err);
      std::optional<int> st = reap_within(pid, kExitLimit);
      REQUIRE(st.has_value());
      REQUIRE(WIFEXITED(*st));
      CHECK(WEXITSTATUS(*st) == 2);
      CHECK(said.rfind("usage: ", 0) == 0);
    }
  }
}

namespace {

// A port that was free a moment ago (the kernel picks it).
std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

// True once a connect to `port` succeeds (polled for at most 30 s).
bool accepting(std::uint16_t port) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a poll, not a synchronisation
  }
  return false;
}

// Starts `path` on one worker with its stderr piped back, resets a
// connection whose handler waits in a read, makes one more round trip on a
// second connection (on the one worker, the reset's completion is handled
// before it), stops the server and returns everything it wrote to stderr.
std::string stderr_after_reset(const char* path, const std::string& request,
                               std::size_t reply_size) {
  const std::uint16_t port = free_port();
  int err = -1;
  pid_t pid = spawn_server(path, {"--port", std::to_string(port), "--workers", "1"}, 2, &err);
  if (!accepting(port)) {
    ::kill(pid, SIGKILL);
    reap_within(pid, kExitLimit);
    ::close(err);
    FAIL("the server did not start accepting");
  }
  {
    Client victim(port);
    victim.send(request);
    CHECK(victim.recv_n(reply_size).size() == reply_size);
    victim.reset();
    Client other(port);
    other.send(request);
    CHECK(other.recv_n(reply_size).size() == reply_size);
  }
  ::kill(pid, SIGTERM);
  std::optional<int> st = reap_within(pid, kExitLimit);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(err, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  ::close(err);
  REQUIRE(st.has_value());
  CHECK(WIFEXITED(*st));
  CHECK(WEXITSTATUS(*st) == 0);
  return text;
}

}  // namespace

TEST_CASE("servers: a client's reset ends its connection without a report", "[example]") {
  ::signal(SIGPIPE, SIG_IGN);
  SECTION("echo_server") {
    std::string err = stderr_after_reset(WEFT_ECHO_SERVER, "ping", 4);
    CHECK(err.find("Unhandled exception") == std::string::npos);
  }
  SECTION("http_hello") {
    std::string err =
        stderr_after_reset(WEFT_HTTP_HELLO, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", kHello.size());
    CHECK(err.find("Unhandled exception") == std::string::npos);
  }
  SECTION("resp_server") {
    std::string err = stderr_after_reset(WEFT_RESP_SERVER, "PING\r\n", 7);
    CHECK(err.find("Unhandled exception") == std::string::npos);
  }
}
