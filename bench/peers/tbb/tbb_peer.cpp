// oneTBB peer for weft's benchmark suite: spawn_many and chained_spawn with
// tbb::task_group inside a tbb::task_arena of --workers slots (the calling
// thread takes one of them). Other workloads are reported as skipped.
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <atomic>
#include <set>
#include <string>

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
        if (left <= 1) done->store(true, std::memory_order_release);
        else tg->run(Link{tg, done, left - 1});
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

}  // namespace

int main(int argc, char** argv) {
    peer::Args a = peer::parse_args(kProg, argc, argv);
    peer::Json out("tbb", a.workload);
    if (a.workload != "spawn_many" && a.workload != "chained_spawn") {
        static const std::set<std::string> suite = {
            "spawn_remote", "yield_many", "ping_pong", "timers", "spawn_idle",
            "io_nop",       "blocking_seq", "blocking_conc"};
        out.str("skipped", suite.count(a.workload)
                               ? "the TBB peer covers spawn_many and chained_spawn only: "
                                 "TBB tasks cannot suspend, sleep or yield"
                               : "unknown workload");
        out.print();
        return 0;
    }
    tbb::task_arena arena(a.workers);
    arena.initialize();
    warm_up(arena);
    out.integer("workers", a.workers);

    if (a.workload == "spawn_many") {
        int64_t n = a.n < 0 ? 1000000 : a.n;
        out.integer("n", n);
        out.timing(spawn_many(arena, n), n);
        out.str("note", "task_group::run of n no-op lambdas from inside task_arena::execute, then wait");
    } else {
        int64_t n = a.n < 0 ? 100000 : a.n;
        out.integer("n", n);
        out.timing(chained_spawn(arena, n), n);
        out.str("note", "each task runs the next through the same task_group::run; wait() returns when the last has run");
    }
    out.print();
    return 0;
}
