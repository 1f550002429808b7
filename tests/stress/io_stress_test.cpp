// I/O under stress: no bytes lost when reads are cancelled or time out while
// data races in, and 10,000 concurrent connections on 2 workers. Seeds come
// from WEFT_STRESS_SEED (else random) and are printed, so a failure can be
// replayed. Checks inside worker tasks go through atomics (Catch2 is not
// thread-safe); the test thread CHECKs the totals.
#include "../support/fd_check.hpp"
// (fd_check.hpp first: it configures Catch)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>
#include <weft/io.hpp>
#include <weft/weft.hpp>

#include "../support/io_helpers.hpp"
#include "../support/test_helpers.hpp"

using namespace std::chrono_literals;
using weft::Task;
using weft_test::tcp_pair;
using weft_test::workers;
namespace io = weft::io;

namespace {

std::uint64_t stress_seed() {
  std::uint64_t seed;
  if (const char* s = std::getenv("WEFT_STRESS_SEED")) {
    seed = std::strtoull(s, nullptr, 0);
  } else {
    seed = std::random_device{}();
  }
  std::fprintf(stderr, "io_stress_test: WEFT_STRESS_SEED=%llu\n",
               static_cast<unsigned long long>(seed));
  return seed;
}

/// The byte stream is k % 251 for the k-th byte, so a lost, duplicated or
/// reordered byte shows up as a mismatch.
struct Stream {
  std::uint64_t sent = 0;      // written by the writer tasks, one at a time
  std::uint64_t received = 0;  // written by the reader tasks, one at a time
  std::atomic<std::uint64_t> mismatches{0};
  std::atomic<std::uint64_t> completed_reads{0};
  std::atomic<std::uint64_t> cancelled{0};
  std::atomic<std::uint64_t> timeouts{0};
  std::atomic<bool> reader_started{false};
  void take(const char* buf, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      if (static_cast<unsigned char>(buf[i]) != (received + i) % 251) mismatches.fetch_add(1);
    received += n;
  }
};

Task<void> write_chunk(const io::TcpStream* c, Stream* st, std::size_t len) {
  char buf[512];
  for (std::size_t i = 0; i < len; ++i) buf[i] = static_cast<char>((st->sent + i) % 251);
  co_await c->send_all({buf, len});
  st->sent += len;
}

/// Reads until cancelled; `timeout_ns` >= 0 gives every recv that timeout
/// (and a timeout just starts the next recv).
Task<void> reader(const io::TcpStream* s, Stream* st, std::int64_t timeout_ns) {
  char buf[300];
  st->reader_started.store(true);
  for (;;) {
    io::OpTimeout t;
    if (timeout_ns >= 0) t = std::chrono::nanoseconds(timeout_ns);
    std::size_t n;
    try {
      n = co_await s->recv(buf, t);
    } catch (const weft::TimeoutError&) {
      st->timeouts.fetch_add(1);
      continue;
    } catch (const weft::CancelledError&) {
      st->cancelled.fetch_add(1);
      throw;
    }
    st->completed_reads.fetch_add(1);
    st->take(buf, n);
  }
}

/// `rounds` times: a reader and a writer race, and the reader is cancelled
/// once it has started, after 0-3 more yields: either its recv is in flight
/// (cancelled, or completed anyway and delivered) or it completed and the
/// next recv raises. Then the rest is drained: received + left == sent.
Task<void> race(Stream* st, std::uint64_t seed, int rounds, bool with_timeouts) {
  auto [c, s] = co_await tcp_pair();
  std::mt19937_64 rng(seed);
  for (int i = 0; i < rounds; ++i) {
    std::int64_t tmo = with_timeouts ? static_cast<std::int64_t>(rng() % 50000) : -1;
    st->reader_started.store(false);
    auto r = weft::spawn(reader(&s, st, tmo));
    auto w = weft::spawn(write_chunk(&c, st, 1 + rng() % 500));
    // A cancel before the reader's first step would cancel no read at all.
    while (!st->reader_started.load()) co_await weft::yield_now();
    int yields = static_cast<int>(rng() % 4);
    for (int y = 0; y < yields; ++y) co_await weft::yield_now();
    if (with_timeouts && rng() % 2) co_await weft::sleep(std::chrono::microseconds(rng() % 60));
    r.cancel();
    co_await w;
    try {
      co_await r;
    } catch (const weft::CancelledError&) {
    }
  }
  co_await c.shutdown(SHUT_WR);
  char buf[4096];
  for (;;) {
    std::size_t n = co_await s.recv(buf, 10s);
    if (n == 0) break;
    st->take(buf, n);
  }
}

}  // namespace

TEST_CASE("io no lost bytes: 10,000 reads cancelled while data races in", "[io][stress]") {
  std::uint64_t seed = stress_seed();
  Stream st;
  weft::Runtime rt(workers(2));
  rt.block_on(race(&st, seed, 10000, false));
  INFO("WEFT_STRESS_SEED=" << seed << " sent " << st.sent << " received " << st.received
                           << " reads completed " << st.completed_reads << " cancelled "
                           << st.cancelled);
  CHECK(st.received == st.sent);
  CHECK(st.mismatches == 0);
  CHECK(st.cancelled == 10000);
  std::fprintf(stderr, "cancel race: %llu bytes, %llu reads completed, %llu cancelled\n",
               static_cast<unsigned long long>(st.sent),
               static_cast<unsigned long long>(st.completed_reads.load()),
               static_cast<unsigned long long>(st.cancelled.load()));
}

TEST_CASE("io no lost bytes: 5,000 rounds of reads with 0-50 us timeouts while data races in",
          "[io][stress][timeout]") {
  std::uint64_t seed = stress_seed();
  Stream st;
  weft::Runtime rt(workers(2));
  rt.block_on(race(&st, seed, 5000, true));
  INFO("WEFT_STRESS_SEED=" << seed << " sent " << st.sent << " received " << st.received
                           << " timeouts " << st.timeouts);
  CHECK(st.received == st.sent);
  CHECK(st.mismatches == 0);
  CHECK(st.timeouts > 0);
  std::fprintf(stderr, "timeout race: %llu bytes, %llu reads completed, %llu timed out\n",
               static_cast<unsigned long long>(st.sent),
               static_cast<unsigned long long>(st.completed_reads.load()),
               static_cast<unsigned long long>(st.timeouts.load()));
}

namespace {

// The client side runs in a child process: with both ends in one process
// the test would need 20,000 descriptors, and this machine's hard
// RLIMIT_NOFILE is exactly 20,000. The server (this process) has the
// 10,000 connections on 2 workers.
constexpr int kConnections = 10000;

struct ServerStats {
  std::atomic<int> accepted{0};
  std::atomic<int> open{0};
  std::atomic<int> max_open{0};
  std::atomic<int> done{0};
  std::atomic<int> errors{0};
};

Task<void> serve_one(io::TcpStream s, ServerStats* ss) {
  try {
    char buf[8];
    co_await s.recv_exact(buf, 60s);
    int now = ss->open.fetch_add(1) + 1;
    int prev = ss->max_open.load();
    while (now > prev && !ss->max_open.compare_exchange_weak(prev, now)) {
    }
    co_await s.send_all({buf, 8});
    char rest[16];
    // The client closes only once all 10,000 are open (it holds them).
    while ((co_await s.recv(rest, 120s)) != 0) {
    }
    ss->open.fetch_sub(1);
  } catch (const std::exception& e) {
    if (ss->errors.fetch_add(1) < 5) std::fprintf(stderr, "server: %s\n", e.what());
  }
  ss->done.fetch_add(1);
}

Task<void> accept_loop(const io::TcpListener* l, ServerStats* ss) {
  for (int i = 0; i < kConnections; ++i) {
    io::TcpStream s = co_await l->accept();
    ss->accepted.fetch_add(1);
    weft::spawn(serve_one(std::move(s), ss));
  }
}

struct ClientStats {
  std::atomic<int> echoed{0};
  std::atomic<int> errors{0};
  weft::Event all_echoed;
};

Task<void> client(io::SocketAddress addr, int id, ClientStats* cs) {
  try {
    io::TcpStream c = co_await io::TcpStream::connect(addr, 60s);
    char msg[8];
    std::snprintf(msg, sizeof msg, "%07d", id);
    co_await c.send_all({msg, 8});
    char back[8];
    co_await c.recv_exact(back, 60s);
    if (std::memcmp(msg, back, 8) != 0) throw std::runtime_error("echo mismatch");
    if (cs->echoed.fetch_add(1) + 1 == kConnections) cs->all_echoed.set();
    co_await cs->all_echoed.wait();  // every connection is open at once
    co_await c.close();
  } catch (const std::exception& e) {
    if (cs->errors.fetch_add(1) < 5) std::fprintf(stderr, "client %d: %s\n", id, e.what());
    cs->all_echoed.set();  // do not leave the others waiting forever
  }
}

/// Raises the soft RLIMIT_NOFILE to `need`; false if the hard limit is lower.
bool raise_nofile(rlim_t need) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur >= need) return true;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < need) {
    rlimit both{need, need};  // only a privileged process may raise the hard limit
    return ::setrlimit(RLIMIT_NOFILE, &both) == 0;
  }
  rlimit raised{need, lim.rlim_max};
  return ::setrlimit(RLIMIT_NOFILE, &raised) == 0;
}

}  // namespace

TEST_CASE("io 10,000 concurrent connections on 2 workers", "[io][stress]") {
  const rlim_t need = kConnections + 256;
  if (!raise_nofile(need)) {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    WARN("SKIPPED: RLIMIT_NOFILE hard limit " << lim.rlim_max << " is below the " << need
                                              << " descriptors each side needs");
    return;
  }
  auto l = io::TcpListener::bind(io::SocketAddress::loopback_v4(0), {.backlog = 65535});
  io::SocketAddress addr = l.local_address();

  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The clients: a runtime of their own, created after the fork.
    ::close(l.release());
    ClientStats cs;
    {
      weft::Runtime crt(workers(2));
      crt.block_on([](io::SocketAddress a, ClientStats* c) -> Task<void> {
        std::vector<weft::JoinHandle<void>> hs;
        hs.reserve(kConnections);
        for (int i = 0; i < kConnections; ++i) hs.push_back(weft::spawn(client(a, i, c)));
        for (auto& h : hs) co_await h;
      }(addr, &cs));
    }
    std::_Exit(cs.errors.load() == 0 && cs.echoed.load() == kConnections ? 0 : 1);
  }

  ServerStats ss;
  {
    weft::Runtime rt(workers(2));
    rt.block_on([](const io::TcpListener* lp, ServerStats* s) -> Task<void> {
      co_await accept_loop(lp, s);
      while (s->done.load() < kConnections) co_await weft::sleep(1ms);
    }(&l, &ss));
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(ss.errors == 0);
  CHECK(ss.accepted == kConnections);
  CHECK(ss.max_open == kConnections);
  CHECK(ss.done == kConnections);
}
