// Zero-copy send against plain send over loopback TCP: one connection, a
// sender task that sends 32 MiB per iteration in chunks of `size` bytes
// (16 KiB, 64 KiB, 256 KiB, 1 MiB) from one reused buffer, with
// TcpStream::send (IORING_OP_SEND, a copy into the socket buffer) or
// TcpStream::send_zc (IORING_OP_SEND_ZC: pages pinned and sent from, the
// co_await returns after the notification CQE), and a receiver task that
// reads into a 1 MiB buffer and discards. Reported as bytes/s; the label says
// how many of the zero-copy sends the kernel reported as copied after all
// (IORING_NOTIF_USAGE_ZC_COPIED): on loopback the receive side copies every
// one of them, so what this measures is the cost of the zero-copy machinery
// (pinning, the notification) where it cannot pay off.
//
//   build/release/bench/bench_send_zc --benchmark_filter='size:65536/zc:1'
//
// Measured (this 2-core VM, 2026-12-03; 7 runs of each mode alternating,
// --benchmark_min_time=0.5, medians; zc/send as ratio of the medians and,
// in brackets, median of the per-pair ratios):
//   16 KiB : send 0.87 GiB/s, send_zc 0.29 GiB/s  0.33x (0.37x)
//   64 KiB : send 1.12 GiB/s, send_zc 0.68 GiB/s  0.61x (0.64x)
//  256 KiB : send 0.99 GiB/s, send_zc 1.27 GiB/s  1.28x (1.31x)
//    1 MiB : send 1.10 GiB/s, send_zc 0.60 GiB/s  0.55x (0.61x)
// Every zero-copy send was reported copied. With nothing to save on
// loopback, the pinning and the wait for each notification (the next send
// goes out only once the last one's bytes are acknowledged) cost; the one
// size ahead sits between two losses, so send() does not switch to send_zc
// above any threshold (README, I/O, "Zero-copy send").
//
// Two runs of the same binary differ up to 2x here (PLATFORM.md): compare
// modes within one run, or alternate --benchmark_filter='zc:0' / 'zc:1'.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>
#include <weft/io.hpp>
#include <weft/weft.hpp>

namespace {

namespace io = weft::io;

constexpr std::size_t kBytesPerIteration = std::size_t{32} << 20;

weft::Task<std::size_t> drain(const io::TcpStream* s) {
  std::vector<char> buf(std::size_t{1} << 20);
  std::size_t total = 0;
  for (;;) {
    std::size_t n = co_await s->recv(buf);
    if (n == 0) co_return total;
    total += n;
  }
}

weft::Task<void> run(benchmark::State* state, std::size_t size, bool zc) {
  auto l = io::TcpListener::bind(io::SocketAddress::loopback_v4(0));
  auto accepted = weft::spawn([](const io::TcpListener* lp) -> weft::Task<io::TcpStream> {
    co_return co_await lp->accept();
  }(&l));
  io::TcpStream c = co_await io::TcpStream::connect(l.local_address());
  io::TcpStream s = co_await accepted;
  auto reader = weft::spawn(drain(&s));

  std::vector<char> buf(size);
  for (std::size_t i = 0; i < size; ++i) buf[i] = static_cast<char>(i * 131);
  std::uint64_t ops = 0, copied = 0;
  for (auto _ : *state) {
    std::size_t left = kBytesPerIteration;
    while (left > 0) {
      io::ConstBuffer b(buf.data(), std::min(left, size));
      std::size_t n = 0;
      if (zc) {
        auto op = c.send_zc(b);
        n = co_await op;
        copied += op.copied() ? 1 : 0;
      } else {
        n = co_await c.send(b);
      }
      ++ops;
      left -= n;
    }
  }
  co_await c.shutdown();
  std::size_t got = co_await reader;
  state->SetBytesProcessed(static_cast<std::int64_t>(got));
  state->counters["sends"] = static_cast<double>(ops);
  if (zc)
    state->SetLabel("copied " + std::to_string(copied) + " of " + std::to_string(ops) +
                    " zero-copy sends");
}

void BM_LoopbackSend(benchmark::State& state) {
  weft::RuntimeOptions o;
  o.workers = 2;
  weft::Runtime rt(o);
  rt.block_on(run(&state, static_cast<std::size_t>(state.range(0)), state.range(1) != 0));
}
BENCHMARK(BM_LoopbackSend)
    ->ArgNames({"size", "zc"})
    ->ArgsProduct({{16 << 10, 64 << 10, 256 << 10, 1 << 20}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
