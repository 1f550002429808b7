// The example servers, each started as its own process on a free port and
// driven by a plain blocking-socket client (no weft on the client side):
// echo_server echoes, http_hello answers keep-alive and pipelined requests,
// resp_server speaks RESP for PING, ECHO, SET, GET, DEL, INCR (inline and
// multibulk, pipelined). The binaries' paths come from CMake.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

// A server process: started with --port 0 --workers 2; its first stdout line
// "listening on 127.0.0.1:<port>" says where (and that it is ready).
class ServerProcess {
 public:
  explicit ServerProcess(const char* path) {
    int out[2];
    REQUIRE(::pipe(out) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      ::close(out[1]);
      ::execl(path, path, "--port", "0", "--workers", "2", static_cast<char*>(nullptr));
      std::perror("exec");
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(out[0]);
    INFO("server said: " << line);
    std::size_t colon = line.rfind(':');
    REQUIRE(line.rfind("listening on ", 0) == 0);
    REQUIRE(colon != std::string::npos);
    port_ = static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
  }
  ~ServerProcess() {
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  std::uint16_t port() const { return port_; }

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
