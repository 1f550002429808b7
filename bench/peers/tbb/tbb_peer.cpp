// oneTBB peer for weft's benchmark suite: spawn_many and chained_spawn with
// tbb::task_group inside a tbb::task_arena of --workers slots (the calling
// thread takes one of them), and cpu_fanout with tbb::parallel_reduce called
// directly in that arena. Other workloads are reported as skipped.
#include <tbb/blocked_range.h>
#include <tbb/parallel_reduce.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <vector>

#include "../common/peer.hpp"

namespace {

constexpr const char* kProg = "weft-peer-tbb";

void warm_up(tbb::task_arena& arena) {
    arena.execute([] {
        tbb::task_group tg;
        for (int i = 0; i < 1000; ++i) tg.run([] {});
        tg.wait();
    });
}

int64_t spawn_many(tbb::task_arena& arena, int64_t n) {
    int64_t t0 = peer::now_ns();
    arena.execute([n] {
        tbb::task_group tg;
        for (int64_t i = 0; i < n; ++i) tg.run([] {});
        tg.wait();
    });
    return peer::now_ns() - t0;
}

// One task of the chain: runs the next one through the same task_group.
struct Link {
    tbb::task_group* tg;
    std::atomic<bool>* done;
    int64_t left;
    void operator()() const {
        if (left <= 1)
            done->store(true, std::memory_order_release);
        else
            tg->run(Link{tg, done, left - 1});
    }
};

int64_t chained_spawn(tbb::task_arena& arena, int64_t n) {
    std::atomic<bool> done{n <= 0};
    int64_t t0 = peer::now_ns();
    arena.execute([&] {
        tbb::task_group tg;
        if (n > 0) tg.run(Link{&tg, &done, n});
        tg.wait();
    });
    int64_t ns = peer::now_ns() - t0;
    if (!done.load(std::memory_order_acquire)) {
        std::fprintf(stderr, "%s: chain did not finish\n", kProg);
        std::exit(1);
    }
    return ns;
}

// cpu_fanout: the sum of n uint32 values (value i & 1023) in exactly `chunks`
// chunks, chunk c being [n*c/chunks, n*(c+1)/chunks) as on weft's side
// (bench/weft_bench.cpp cpu_fanout_root). parallel_reduce runs over the chunk
// indices with grain 1 and a simple_partitioner, which splits a range until
// it is no longer than the grain: every leaf is one chunk. (A grain of n/p
// over the values, as before, split 100,000,000 into 16,384 leaves: halving
// stops below the grain, not at it.)
uint64_t fanout_sum(tbb::task_arena& arena, const std::vector<uint32_t>& data, int64_t n,
                    int64_t chunks) {
    uint64_t total = 0;
    arena.execute([&] {
        total = tbb::parallel_reduce(
            tbb::blocked_range<int64_t>(0, chunks, 1), uint64_t{0},
            [&](const tbb::blocked_range<int64_t>& r, uint64_t acc) {
                for (int64_t c = r.begin(); c != r.end(); ++c) {
                    const int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
                    for (int64_t i = b; i < e; ++i) acc += data[static_cast<size_t>(i)];
                }
                return acc;
            },
            [](uint64_t x, uint64_t y) { return x + y; }, tbb::simple_partitioner());
    });
    return total;
}

}  // namespace

int main(int argc, char** argv) {
    peer::Args a = peer::parse_args(kProg, argc, argv);
    peer::Json out("tbb", a.workload);
    if (a.workload != "spawn_many" && a.workload != "chained_spawn" && a.workload != "cpu_fanout") {
        static const std::set<std::string> suite = {"spawn_remote", "yield_many",   "ping_pong",
                                                    "timers",       "spawn_idle",   "io_nop",
                                                    "blocking_seq", "blocking_conc"};
        out.str("skipped", suite.count(a.workload)
                               ? "the TBB peer covers spawn_many, chained_spawn and cpu_fanout "
                                 "only: TBB tasks cannot suspend, sleep or yield"
                               : "unknown workload");
        out.print();
        return 0;
    }
    tbb::task_arena arena(a.workers);
    arena.initialize();
    warm_up(arena);
    out.integer("workers", a.workers);

    if (a.workload == "cpu_fanout") {
        int64_t n = a.n < 0 ? 100000000 : a.n;
        int64_t chunks = a.p < 0 ? 10000 : std::max<int64_t>(1, a.p);
        out.integer("n", n);
        out.integer("p", chunks);
        std::vector<uint32_t> data(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i)
            data[static_cast<size_t>(i)] = static_cast<uint32_t>(i & 1023);
        fanout_sum(arena, data, std::min<int64_t>(n, 1024), 16);  // warm
        int64_t t0 = peer::now_ns();
        uint64_t sum = fanout_sum(arena, data, n, chunks);
        out.timing(peer::now_ns() - t0, chunks);
        out.integer("sum", static_cast<int64_t>(sum));
        out.str("note",
                "tbb::parallel_reduce over the p chunk indices (grain 1, simple_partitioner: "
                "one leaf per chunk of n/p values) inside task_arena::execute; ns_per_op per "
                "chunk");
    } else if (a.workload == "spawn_many") {
        int64_t n = a.n < 0 ? 1000000 : a.n;
        out.integer("n", n);
        out.timing(spawn_many(arena, n), n);
        out.str("note",
                "task_group::run of n no-op lambdas from inside task_arena::execute, then wait");
    } else {
        int64_t n = a.n < 0 ? 100000 : a.n;
        out.integer("n", n);
        out.timing(chained_spawn(arena, n), n);
        out.str("note",
                "each task runs the next through the same task_group::run; wait() returns when the "
                "last has run");
    }
    out.print();
    return 0;
}
