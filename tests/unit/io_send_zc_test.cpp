// Zero-copy send (TcpStream::send_zc / send_all_zc, IORING_OP_SEND_ZC) over
// loopback TCP: data integrity for large buffers, the two CQEs (the task
// resumes only after the notification, also when cancelled or timed out),
// and the error types of a reset peer. Under ASan the cancel and timeout
// cases also prove that the reactor does not touch the awaiting frame after
// it is gone (the notification CQE writes into it). fd_check.hpp fails the
// file if any test leaks a descriptor. Results are awaited into locals
// before CHECK (see io_socket_test.cpp for why); spawned tasks report back
// instead of using CHECK (Catch2 is not thread-safe).
#include "../support/fd_check.hpp"
// (fd_check.hpp first: it configures Catch)
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>
#include <weft/io.hpp>
#include <weft/weft.hpp>

#include "../support/io_helpers.hpp"
#include "../support/test_helpers.hpp"

using namespace std::chrono_literals;
using weft::Task;
using weft_test::reset_close;
using weft_test::tcp_pair;
using weft_test::workers;
namespace io = weft::io;

namespace {

std::vector<char> pattern(std::size_t n, unsigned seed) {
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<char>((i * 131 + seed) ^ (i >> 9));
  return v;
}

/// Fills `c`'s send path (small SO_SNDBUF, the peer reads nothing) until a
/// send times out: afterwards a send waits for room. 250 ms: longer than a
/// delayed ACK (at most 200 ms), whose arrival would free room.
Task<void> fill(const io::TcpStream& c) {
  std::string chunk(1 << 16, 'f');
  for (;;) {
    try {
      co_await c.send(chunk, 250ms);
    } catch (const weft::TimeoutError&) {
      co_return;
    }
  }
}

/// Reads and discards until end of stream or error; returns the bytes read.
Task<std::size_t> drain(const io::TcpStream* s) {
  std::vector<char> buf(1 << 16);
  std::size_t total = 0;
  for (;;) {
    std::size_t n = co_await s->recv(buf);
    if (n == 0) co_return total;
    total += n;
  }
}

}  // namespace

TEST_CASE("io send_zc: large buffers arrive intact over loopback TCP", "[io][tcp][send_zc]") {
  weft::Runtime rt(workers(2));
  rt.block_on([]() -> Task<void> {
    auto [c, s] = co_await tcp_pair();
    for (std::size_t size : {std::size_t{1}, std::size_t{16} << 10, std::size_t{64} << 10,
                             std::size_t{256} << 10, std::size_t{1} << 20, std::size_t{4} << 20}) {
      const auto out = pattern(size, static_cast<unsigned>(size));
      auto reader =
          weft::spawn([](const io::TcpStream* ss, std::size_t n) -> Task<std::vector<char>> {
            std::vector<char> in(n);
            co_await ss->recv_exact(in);
            co_return in;
          }(&s, size));
      co_await c.send_all_zc(out);
      auto in = co_await reader;
      CHECK(in.size() == size);
      CHECK(in == out);
    }
    // Empty buffer: nothing to send.
    std::size_t zero = co_await c.send_zc(io::ConstBuffer());
    CHECK(zero == 0);
    // One send_zc takes some prefix; its result counts what arrives. The
    // reader runs meanwhile: where the kernel does not copy, the
    // notification (and so the send's completion) waits until the peer has
    // read the bytes, and a reader started after it would never start.
    const auto big = pattern(std::size_t{2} << 20, 9);
    auto all = weft::spawn([](const io::TcpStream* ss) -> Task<std::vector<char>> {
      std::vector<char> got;
      std::vector<char> buf(1 << 16);
      for (;;) {
        std::size_t k = co_await ss->recv(buf);
        if (k == 0) co_return got;
        got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(k));
      }
    }(&s));
    auto op = c.send_zc(big);
    std::size_t n = co_await op;
    co_await c.shutdown(SHUT_WR);
    std::vector<char> got = co_await all;
    CHECK(n > 0);
    CHECK(n <= big.size());
    CHECK(got.size() == n);
    CHECK(std::memcmp(got.data(), big.data(), std::min(n, got.size())) == 0);
  }());
}

TEST_CASE("io send_zc: the task resumes only after the notification CQE", "[io][tcp][send_zc]") {
  weft::Runtime rt(workers(2));
  rt.block_on([]() -> Task<void> {
    auto [c, s] = co_await tcp_pair();
    const auto out = pattern(std::size_t{1} << 20, 5);
    auto reader = weft::spawn(drain(&s));
    for (int i = 0; i < 20; ++i) {
      auto op = c.send_zc(out);
      std::size_t n = co_await op;
      CHECK(n > 0);
      // The notification came (the kernel is done with `out`), and on
      // loopback it says the kernel copied after all.
      CHECK(op.notification_seen());
    }
    co_await c.shutdown();
    std::size_t total = co_await reader;
    CHECK(total > 0);
  }());
}

TEST_CASE("io send_zc: cancelled or timed out, the buffer is held until the notification",
          "[io][tcp][send_zc][cancel][timeout]") {
  weft::Runtime rt(workers(2));
  rt.block_on([]() -> Task<void> {
    auto [c, s] = co_await tcp_pair();
    c.set_option(SOL_SOCKET, SO_SNDBUF, 4096);
    co_await fill(c);
    // A plain send stops while a zero-copy one still finds room (it needs
    // no socket memory for the bytes; 1024 bytes here): a first send_zc,
    // the plug, takes that, and its notification then waits for the peer
    // to read. The sends below find no room at all.
    auto plug = weft::spawn([](const io::TcpStream* cs) -> Task<std::size_t> {
      auto b = pattern(std::size_t{64} << 10, 7);
      co_return co_await cs->send_zc(b);
    }(&c));
    co_await weft::sleep(20ms);

    // Timeout: the send waits for room that does not come. Should it find
    // room after all, the bytes it takes hold its notification until the
    // peer reads: the safety reader makes that a warning, not a hang.
    // Either way the op must have seen its notification before returning.
    {
      auto safety = weft::spawn([](const io::TcpStream* ss) -> Task<std::size_t> {
        co_await weft::sleep(1s);
        co_return co_await drain(ss);
      }(&s));
      auto buf = pattern(std::size_t{256} << 10, 1);
      auto op = c.send_zc(buf, 50ms);
      bool timed_out = false;
      std::size_t n = 0;
      try {
        n = co_await op;
        CHECK(n > 0);
      } catch (const weft::TimeoutError& e) {
        timed_out = true;
        CHECK(std::string(e.what()) == "send_zc: timed out");
      }
      if (!timed_out)
        WARN("send_zc found room after the fill (took "
             << n << " bytes): the timeout path was not taken");
      CHECK(op.notification_seen());
      safety.cancel();
      CHECK_THROWS_AS(co_await safety, weft::CancelledError);
    }

    // Cancel: the task owns the buffer in its frame; when it ends the frame
    // is freed, so a notification CQE delivered later would be a
    // use-after-free that ASan reports.
    struct Seen {
      bool notified = false;
      std::atomic<bool> started{false};  // the send is about to be submitted
    };
    Seen seen;
    auto h = weft::spawn([](const io::TcpStream* cs, Seen* out) -> Task<void> {
      auto buf = pattern(std::size_t{1} << 20, 2);
      auto op = cs->send_zc(buf);
      out->started.store(true);
      try {
        co_await op;
      } catch (const weft::CancelledError&) {
        out->notified = op.notification_seen();
        throw;
      }
      out->notified = op.notification_seen();
      co_await weft::sleep(1ms);  // a cancel that came after the send is raised here
    }(&c, &seen));
    // A slow (sanitizer) build may not have started the task by the time of
    // the cancel; then no send exists to be notified about.
    while (!seen.started.load()) co_await weft::sleep(1ms);
    co_await weft::sleep(20ms);
    h.cancel();
    co_await weft::sleep(10ms);
    // Should the send have taken bytes after all (room appeared), their
    // notification waits for the peer to read them: read from now on.
    auto reader = weft::spawn(drain(&s));
    CHECK_THROWS_AS(co_await h, weft::CancelledError);
    CHECK(seen.notified);
    std::size_t plugged = co_await plug;
    CHECK(plugged > 0);

    // The connection still works.
    co_await c.send_all_zc(pattern(std::size_t{64} << 10, 3), 10s);
    co_await c.shutdown();
    std::size_t total = co_await reader;
    CHECK(total >= (std::size_t{64} << 10));
  }());
}

TEST_CASE("io send_zc: a loop of sends cancelled at any point loses no byte",
          "[io][tcp][send_zc][cancel]") {
  weft::Runtime rt(workers(2));
  rt.block_on([]() -> Task<void> {
    auto [c, s] = co_await tcp_pair();
    c.set_option(SOL_SOCKET, SO_SNDBUF, 4096);
    // The peer does not read yet: the sends fill the path, and the cancel
    // finds the task either in a send that waits for room or waiting for
    // the notification of bytes the kernel still refers to.
    struct Seen {
      bool notified = true;  // every op that returned saw its notification
      std::size_t sent = 0;
    };
    Seen seen;
    auto h = weft::spawn([](const io::TcpStream* cs, Seen* out) -> Task<void> {
      auto buf = pattern(std::size_t{4} << 20, 4);
      for (;;) {
        // A cancel may also be raised before the next op is submitted (then
        // there is no notification): only ops that returned are checked.
        auto op = cs->send_zc(buf);
        out->sent += co_await op;
        out->notified = out->notified && op.notification_seen();
      }
    }(&c, &seen));
    co_await weft::sleep(30ms);
    h.cancel();
    co_await weft::sleep(10ms);
    // Let anything outstanding go: the peer reads everything.
    auto reader = weft::spawn(drain(&s));
    CHECK_THROWS_AS(co_await h, weft::CancelledError);
    CHECK(seen.notified);
    co_await c.shutdown();
    std::size_t total = co_await reader;
    CHECK(total == seen.sent);
  }());
}

TEST_CASE("io send_zc: a reset peer raises ConnectionResetError or BrokenPipeError",
          "[io][tcp][send_zc]") {
  weft::Runtime rt(workers(2));
  rt.block_on([]() -> Task<void> {
    auto [c, s] = co_await tcp_pair();
    reset_close(s);
    const auto big = pattern(std::size_t{256} << 10, 6);
    std::string kind;
    int code = 0;
    try {
      for (int i = 0; i < 100; ++i) co_await c.send_all_zc(big, 5s);
    } catch (const io::BrokenPipeError& e) {
      kind = "pipe";
      code = e.code().value();
    } catch (const io::ConnectionResetError& e) {
      kind = "reset";
      code = e.code().value();
    }
    CHECK((kind == "pipe" || kind == "reset"));
    CHECK((code == EPIPE || code == ECONNRESET));
    // Once broken, the error stays.
    CHECK_THROWS_AS(co_await c.send_zc(big), io::ConnectionResetError);
  }());
}
