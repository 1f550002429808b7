// The tcp_echo load client of bench/run: the one client every echo server
// (weft's examples/echo_server, Tokio's, Go's) is measured with.
//
//   weft_echo_client --port P [--host 127.0.0.1] [--connections 64]
//                    [--size 64] [--seconds 5] [--warmup 0.5] [--threads 2]
//                    [--label NAME]
//
// Each of --connections TCP connections (TCP_NODELAY) runs a ping-pong: send
// one --size-byte message, wait until all of it has come back, check every
// byte, send the next. Connections are spread over --threads threads, each a
// plain level-triggered epoll loop over non-blocking sockets. After --warmup
// seconds (not counted) it counts, for --seconds, the round trips completed
// in the window and the round-trip time of each (send of the first byte to
// receipt of the last, CLOCK_MONOTONIC), and prints one JSON line:
//   {"peer":LABEL,"workload":"tcp_echo","connections":..,"size":..,
//    "seconds":..,"threads":..,"msgs":..,"msgs_per_sec":..,"p50_ns":..,
//    "p99_ns":..,"max_ns":..,"ns_per_op":..}
// A connect failure, a closed connection or a wrong echoed byte ends it with
// exit status 1 and a message on stderr; a bad command line exits 2.
//
// Why its own program: Debian ships no echo load generator, and the client
// must not share a runtime with any server it measures, so it uses neither
// weft nor Tokio nor Go; it is plain C++ on epoll, so its own cost per
// message (one send and one recv per round trip) is the same for every
// server. On a 2-core machine it shares the cores with the server, so a
// server that spends less CPU per message also leaves the client more.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = -1;
  int connections = 64;
  int size = 64;
  double seconds = 5.0;
  double warmup = 0.5;
  int threads = 2;
  std::string label = "server";
};

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr, "weft_echo_client: %s\n", msg.c_str());
  std::fprintf(stderr,
               "usage: weft_echo_client --port P [--host 127.0.0.1] [--connections 64] [--size 64] "
               "[--seconds 5] [--warmup 0.5] [--threads 2] [--label NAME]\n");
  std::exit(2);
}

// Any thread may fail; std::exit from two threads at once is undefined, and
// there is nothing to clean up, so _Exit after the message.
[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "weft_echo_client: %s\n", msg.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

double parse_number(const std::string& key, const char* val, double lo, double hi) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(val, &end);
  if (errno != 0 || end == val || *end != '\0' || v < lo || v > hi)
    usage("bad value for " + key + ": " + val);
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    std::string key = argv[i];
    if (i + 1 >= argc) usage("missing value for " + key);
    const char* val = argv[i + 1];
    if (key == "--host")
      o.host = val;
    else if (key == "--port")
      o.port = static_cast<int>(parse_number(key, val, 1, 65535));
    else if (key == "--connections")
      o.connections = static_cast<int>(parse_number(key, val, 1, 100000));
    else if (key == "--size")
      o.size = static_cast<int>(parse_number(key, val, 1, 1 << 20));
    else if (key == "--seconds")
      o.seconds = parse_number(key, val, 0.01, 3600);
    else if (key == "--warmup")
      o.warmup = parse_number(key, val, 0, 3600);
    else if (key == "--threads")
      o.threads = static_cast<int>(parse_number(key, val, 1, 1024));
    else if (key == "--label")
      o.label = val;
    else
      usage("unknown option " + key);
  }
  if (o.port < 0) usage("--port is required");
  o.threads = std::min(o.threads, o.connections);
  return o;
}

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

struct Conn {
  int fd = -1;
  uint32_t id = 0;
  uint32_t seq = 0;
  size_t sent = 0;      // bytes of the current message written so far
  size_t received = 0;  // bytes of its echo read so far
  uint64_t t_sent = 0;
  bool want_out = false;
  std::vector<unsigned char> msg;
  std::vector<unsigned char> echo;
};

// Every message is different (connection id and sequence number in every
// byte position), so a server that echoes stale or foreign bytes is caught.
void fill_message(Conn& c) {
  for (size_t i = 0; i < c.msg.size(); ++i)
    c.msg[i] = static_cast<unsigned char>((c.id * 131u + c.seq * 31u + i * 7u) & 0xff);
}

struct Shared {
  Options opt;
  uint64_t t_measure = 0;  // start of the counted window
  uint64_t t_end = 0;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
};

struct Result {
  uint64_t msgs = 0;
  std::vector<uint32_t> rtt_ns;
};

int connect_one(const Options& o) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &a.sin_addr) != 1)
    usage("--host must be an IPv4 address: " + o.host);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    die("connect " + o.host + ":" + std::to_string(o.port) + ": " + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
    die(std::string("O_NONBLOCK: ") + std::strerror(errno));
  return fd;
}

// Writes what is left of c's message; false if the socket is full (EPOLLOUT
// is then armed by the caller).
bool push(Conn& c) {
  while (c.sent < c.msg.size()) {
    ssize_t n = ::send(c.fd, c.msg.data() + c.sent, c.msg.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return false;
    } else {
      die(std::string("send: ") + std::strerror(errno));
    }
  }
  return true;
}

void set_events(int ep, Conn& c, bool out) {
  if (out == c.want_out) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (out ? EPOLLOUT : 0u);
  ev.data.ptr = &c;
  if (::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev) != 0)
    die(std::string("epoll_ctl: ") + std::strerror(errno));
  c.want_out = out;
}

void start_message(int ep, Conn& c) {
  fill_message(c);
  c.sent = 0;
  c.received = 0;
  c.t_sent = now_ns();
  set_events(ep, c, !push(c));
}

void worker(Shared& sh, std::vector<Conn>& conns, Result& res) {
  const Options& o = sh.opt;
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die(std::string("epoll_create1: ") + std::strerror(errno));
  for (Conn& c : conns) {
    c.fd = connect_one(o);
    c.msg.resize(static_cast<size_t>(o.size));
    c.echo.resize(static_cast<size_t>(o.size));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &c;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) != 0)
      die(std::string("epoll_ctl: ") + std::strerror(errno));
  }
  sh.ready.fetch_add(1);
  while (!sh.go.load(std::memory_order_acquire)) std::this_thread::yield();
  res.rtt_ns.reserve(1 << 20);
  for (Conn& c : conns) start_message(ep, c);

  std::vector<epoll_event> events(conns.size());
  for (;;) {
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 10);
    if (n < 0 && errno != EINTR) die(std::string("epoll_wait: ") + std::strerror(errno));
    uint64_t now = now_ns();
    if (now >= sh.t_end) break;
    for (int i = 0; i < n; ++i) {
      const epoll_event& e = events[static_cast<size_t>(i)];
      Conn& c = *static_cast<Conn*>(e.data.ptr);
      if ((e.events & EPOLLOUT) && c.sent < c.msg.size()) {
        if (push(c)) set_events(ep, c, false);
      }
      if (!(e.events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      ssize_t r = ::recv(c.fd, c.echo.data() + c.received, c.echo.size() - c.received, 0);
      if (r == 0) die("the server closed connection " + std::to_string(c.id));
      if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        die(std::string("recv: ") + std::strerror(errno));
      }
      if (c.received + static_cast<size_t>(r) > c.sent)
        die("the server sent more bytes than it was sent on connection " + std::to_string(c.id));
      c.received += static_cast<size_t>(r);
      if (c.received < c.msg.size()) continue;
      if (std::memcmp(c.echo.data(), c.msg.data(), c.msg.size()) != 0)
        die("wrong bytes echoed on connection " + std::to_string(c.id) + " message " +
            std::to_string(c.seq));
      uint64_t t = now_ns();
      if (t >= sh.t_measure && t < sh.t_end) {
        ++res.msgs;
        uint64_t rtt = t - c.t_sent;
        res.rtt_ns.push_back(static_cast<uint32_t>(std::min<uint64_t>(rtt, UINT32_MAX)));
      }
      ++c.seq;
      start_message(ep, c);
    }
  }
  for (Conn& c : conns) ::close(c.fd);
  ::close(ep);
}

}  // namespace

int main(int argc, char** argv) {
  Shared sh;
  sh.opt = parse(argc, argv);
  const Options& o = sh.opt;
  std::vector<std::vector<Conn>> per(static_cast<size_t>(o.threads));
  for (int i = 0; i < o.connections; ++i) {
    Conn c;
    c.id = static_cast<uint32_t>(i);
    per[static_cast<size_t>(i % o.threads)].push_back(std::move(c));
  }
  std::vector<Result> results(static_cast<size_t>(o.threads));
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t)
    threads.emplace_back(worker, std::ref(sh), std::ref(per[static_cast<size_t>(t)]),
                         std::ref(results[static_cast<size_t>(t)]));
  // Every connection is open before the clock starts.
  while (sh.ready.load() < o.threads) std::this_thread::yield();
  uint64_t t0 = now_ns();
  sh.t_measure = t0 + static_cast<uint64_t>(o.warmup * 1e9);
  sh.t_end = sh.t_measure + static_cast<uint64_t>(o.seconds * 1e9);
  sh.go.store(true, std::memory_order_release);
  for (auto& th : threads) th.join();

  uint64_t msgs = 0;
  std::vector<uint32_t> all;
  for (auto& r : results) {
    msgs += r.msgs;
    all.insert(all.end(), r.rtt_ns.begin(), r.rtt_ns.end());
  }
  auto pct = [&](double p) -> uint64_t {
    if (all.empty()) return 0;
    size_t k = std::min(all.size() - 1, static_cast<size_t>(p * static_cast<double>(all.size())));
    std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end());
    return all[k];
  };
  uint64_t p50 = pct(0.50), p99 = pct(0.99);
  uint64_t mx = all.empty() ? 0 : *std::max_element(all.begin(), all.end());
  double rate = static_cast<double>(msgs) / o.seconds;
  std::printf(
      "{\"peer\":\"%s\",\"workload\":\"tcp_echo\",\"connections\":%d,\"size\":%d,\"seconds\":%.3f,"
      "\"threads\":%d,\"msgs\":%" PRIu64
      ",\"msgs_per_sec\":%.1f,\"ns_per_op\":%.3f,\"p50_ns\":%" PRIu64 ",\"p99_ns\":%" PRIu64
      ",\"max_ns\":%" PRIu64 "}\n",
      o.label.c_str(), o.connections, o.size, o.seconds, o.threads, msgs, rate,
      msgs ? 1e9 / rate : 0.0, p50, p99, mx);
  if (msgs == 0) die("no round trip completed in the measured window");
  return 0;
}
