// Raw liburing peer for weft's benchmark suite: io_nop only. It is the floor
// for weft's per-worker io_uring loops: each of --workers threads owns a ring
// (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN when the kernel
// takes them), keeps --depth NOPs in flight and completes --ops of them.
#include <liburing.h>

#include <atomic>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "../common/peer.hpp"

namespace {

constexpr const char* kProg = "weft-peer-uring";

struct Worker {
    io_uring ring{};
    bool ring_ok = false;
    unsigned flags = 0;
    std::string error;
    int64_t done = 0;
};

// Sets the ring up with the fast flags, falling back to none if refused.
bool setup_ring(Worker& w, unsigned entries) {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int rc = io_uring_queue_init_params(entries, &w.ring, &p);
    if (rc == -EINVAL) {
        p = io_uring_params{};
        rc = io_uring_queue_init_params(entries, &w.ring, &p);
    }
    if (rc < 0) {
        w.error = std::string("io_uring_queue_init_params: ") + std::strerror(-rc);
        return false;
    }
    w.flags = p.flags;
    w.ring_ok = true;
    return true;
}

void prep_nop(io_uring* ring) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    // The SQ holds `depth` entries and at most `depth` are ever prepared
    // between two submits, so this cannot fail.
    io_uring_prep_nop(sqe);
}

// The timed loop: submit `depth`, then wait for at least one completion, reap
// every ready CQE in a batch and re-prepare one NOP per reaped CQE.
bool run_loop(Worker& w, int64_t depth, int64_t ops) {
    io_uring* ring = &w.ring;
    std::vector<io_uring_cqe*> cqes(static_cast<size_t>(depth));
    int64_t submitted = 0;
    for (; submitted < depth && submitted < ops; ++submitted) prep_nop(ring);
    while (w.done < ops) {
        int rc = io_uring_submit_and_wait(ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            w.error = std::string("io_uring_submit_and_wait: ") + std::strerror(-rc);
            return false;
        }
        unsigned got = io_uring_peek_batch_cqe(ring, cqes.data(), static_cast<unsigned>(depth));
        for (unsigned i = 0; i < got; ++i) {
            if (cqes[i]->res < 0) {
                w.error = std::string("NOP failed: ") + std::strerror(-cqes[i]->res);
                return false;
            }
        }
        io_uring_cq_advance(ring, got);
        w.done += got;
        for (unsigned i = 0; i < got && submitted < ops; ++i, ++submitted) prep_nop(ring);
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    peer::Args a = peer::parse_args(kProg, argc, argv);
    peer::Json out("uring", a.workload);
    if (a.workload != "io_nop") {
        out.str("skipped", "the raw liburing peer implements io_nop only");
        out.print();
        return 0;
    }
    const int workers = a.workers;
    const int64_t depth = a.depth < 1 ? 1 : a.depth;
    const int64_t ops = a.ops;

    std::vector<Worker> ws(static_cast<size_t>(workers));
    std::latch ready(workers + 1);
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(workers));
    for (int i = 0; i < workers; ++i) {
        threads.emplace_back([&, i] {
            Worker& w = ws[static_cast<size_t>(i)];
            // The ring is created on the thread that will submit (SINGLE_ISSUER).
            bool ok = setup_ring(w, static_cast<unsigned>(depth));
            ready.count_down();
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            if (ok) run_loop(w, depth, ops);
            if (w.ring_ok) io_uring_queue_exit(&w.ring);
        });
    }
    ready.arrive_and_wait();
    for (const Worker& w : ws) {
        if (!w.ring_ok) {
            go.store(true, std::memory_order_release);
            for (auto& t : threads) t.join();
            out.str("skipped", "io_uring unavailable: " + w.error);
            out.print();
            return 0;
        }
    }
    int64_t t0 = peer::now_ns();
    go.store(true, std::memory_order_release);
    for (auto& t : threads) t.join();
    int64_t ns = peer::now_ns() - t0;
    for (const Worker& w : ws) {
        if (!w.error.empty()) {
            std::fprintf(stderr, "%s: %s\n", kProg, w.error.c_str());
            return 1;
        }
    }

    const unsigned fast = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    out.integer("workers", workers);
    out.integer("depth", depth);
    // ops and ns_per_op are per worker: every worker completes `ops` NOPs in
    // parallel, so ns_per_op = ns_total / ops_per_worker.
    out.integer("ops_per_worker", ops);
    out.timing(ns, ops);
    out.real("ops_per_sec",
             ns > 0 ? static_cast<double>(ops) * workers * 1e9 / static_cast<double>(ns) : NAN);
    out.str("setup_flags", (ws[0].flags & fast) == fast ? "SINGLE_ISSUER|DEFER_TASKRUN" : "none");
    out.print();
    return 0;
}
