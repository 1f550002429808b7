// Tokio peer for weft's benchmark suite. See bench/peers/README.md for the
// command-line and output contract shared by every peer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::{Builder, Runtime};
use tokio::sync::oneshot;
use tokio::time::Instant;

const PEER: &str = "tokio";

// ---------------------------------------------------------------- arguments

struct Args {
    workload: String,
    workers: usize,
    n: Option<u64>,
    t: u64,
    y: u64,
    p: Option<u64>,
    r: u64,
    depth: u64,
    seed: u64,
    ops: u64,
}

fn usage(msg: &str) -> ! {
    eprintln!("weft-peer-tokio: {msg}");
    eprintln!(
        "usage: weft-peer-tokio --workload NAME [--workers 2] [--n N] [--t T] [--y Y] \
         [--p P] [--r R] [--depth D] [--seed S] [--ops OPS]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = Args {
        workload: String::new(),
        workers: 2,
        n: None,
        t: 1000,
        y: 1000,
        p: None,
        r: 100,
        depth: 32,
        seed: 42,
        ops: 1_000_000,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let key = argv[i].as_str();
        let val = match argv.get(i + 1) {
            Some(v) => v.clone(),
            None => usage(&format!("missing value for {key}")),
        };
        let num = || -> u64 {
            val.parse::<u64>()
                .unwrap_or_else(|_| usage(&format!("bad number for {key}: {val}")))
        };
        match key {
            "--workload" => a.workload = val.clone(),
            "--workers" => a.workers = num() as usize,
            "--n" => a.n = Some(num()),
            "--t" => a.t = num(),
            "--y" => a.y = num(),
            "--p" => a.p = Some(num()),
            "--r" => a.r = num(),
            "--depth" => a.depth = num(),
            "--seed" => a.seed = num(),
            "--ops" => a.ops = num(),
            _ => usage(&format!("unknown option {key}")),
        }
        i += 2;
    }
    if a.workload.is_empty() {
        usage("--workload is required");
    }
    if a.workers == 0 {
        usage("--workers must be >= 1");
    }
    a
}

// ---------------------------------------------------------------- output

struct Json {
    parts: Vec<String>,
}

fn quote(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

impl Json {
    fn new(workload: &str) -> Json {
        let mut j = Json { parts: Vec::new() };
        j.str("peer", PEER);
        j.str("workload", workload);
        j
    }
    fn str(&mut self, k: &str, v: &str) {
        self.parts.push(format!("{}:{}", quote(k), quote(v)));
    }
    fn int<T: std::fmt::Display>(&mut self, k: &str, v: T) {
        self.parts.push(format!("{}:{}", quote(k), v));
    }
    fn float(&mut self, k: &str, v: f64) {
        if v.is_finite() {
            self.parts.push(format!("{}:{:.3}", quote(k), v));
        } else {
            self.parts.push(format!("{}:null", quote(k)));
        }
    }
    fn null(&mut self, k: &str) {
        self.parts.push(format!("{}:null", quote(k)));
    }
    fn timing(&mut self, ns_total: u64, ops: u64) {
        self.int("ops", ops);
        self.int("ns_total", ns_total);
        self.float("ns_per_op", ns_total as f64 / ops.max(1) as f64);
    }
    fn print(&self) {
        println!("{{{}}}", self.parts.join(","));
    }
}

// ---------------------------------------------------------------- helpers

/// splitmix64, identical in every peer so the timer delays match.
struct SplitMix64(u64);
impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Nearest-rank percentile of a sorted slice.
fn percentile(sorted: &[i64], pct: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

extern "C" {
    fn sysconf(name: i32) -> i64;
}
const SC_PAGESIZE: i32 = 30; // glibc/Linux value of _SC_PAGESIZE

/// Resident set size in bytes, from /proc/self/statm.
fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let page = unsafe { sysconf(SC_PAGESIZE) };
    pages * if page > 0 { page as u64 } else { 4096 }
}

fn nanos_since(t0: Instant) -> u64 {
    t0.elapsed().as_nanos() as u64
}

/// Runs a short burst of tasks so worker threads, the blocking pool's
/// bookkeeping and the allocator's arenas exist before anything is timed.
fn warm_up(rt: &Runtime) {
    rt.block_on(async {
        let hs: Vec<_> = (0..1000).map(|_| tokio::spawn(async {})).collect();
        for h in hs {
            h.await.unwrap();
        }
    });
}

// ---------------------------------------------------------------- workloads

fn spawn_many(rt: &Runtime, n: u64) -> u64 {
    let t0 = Instant::now();
    let root = rt.spawn(async move {
        let mut hs = Vec::with_capacity(n as usize);
        for _ in 0..n {
            hs.push(tokio::spawn(async {}));
        }
        for h in hs {
            h.await.unwrap();
        }
    });
    rt.block_on(root).unwrap();
    nanos_since(t0)
}

fn spawn_remote(rt: &Runtime, n: u64) -> u64 {
    let t0 = Instant::now();
    // Spawned from the main thread, which is not a runtime worker.
    let mut hs = Vec::with_capacity(n as usize);
    for _ in 0..n {
        hs.push(rt.spawn(async {}));
    }
    rt.block_on(async move {
        for h in hs {
            h.await.unwrap();
        }
    });
    nanos_since(t0)
}

fn yield_many(rt: &Runtime, t: u64, y: u64) -> u64 {
    let t0 = Instant::now();
    let root = rt.spawn(async move {
        let hs: Vec<_> = (0..t)
            .map(|_| {
                tokio::spawn(async move {
                    for _ in 0..y {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
    rt.block_on(root).unwrap();
    nanos_since(t0)
}

/// A message that carries the sender of the oneshot for the reply, so every
/// hop goes through a new channel.
struct Msg {
    v: u64,
    reply: oneshot::Sender<Msg>,
}

async fn pong(mut rx: oneshot::Receiver<Msg>) {
    // Ends when the pinger drops the last sender.
    while let Ok(m) = rx.await {
        let (tx, next) = oneshot::channel();
        let _ = m.reply.send(Msg { v: m.v + 1, reply: tx });
        rx = next;
    }
}

async fn ping(r: u64) -> u64 {
    let (first_tx, first_rx) = oneshot::channel::<Msg>();
    let partner = tokio::spawn(pong(first_rx));
    let mut tx = first_tx;
    let mut v = 0;
    for _ in 0..r {
        let (reply_tx, reply_rx) = oneshot::channel();
        if tx.send(Msg { v, reply: reply_tx }).is_err() {
            panic!("pong ended early");
        }
        let m = reply_rx.await.expect("pong dropped reply");
        v = m.v + 1;
        tx = m.reply;
    }
    drop(tx);
    partner.await.unwrap();
    v
}

fn ping_pong(rt: &Runtime, p: u64, r: u64) -> u64 {
    let t0 = Instant::now();
    let root = rt.spawn(async move {
        let hs: Vec<_> = (0..p).map(|_| tokio::spawn(ping(r))).collect();
        for h in hs {
            let v = h.await.unwrap();
            assert_eq!(v, 2 * r);
        }
    });
    rt.block_on(root).unwrap();
    nanos_since(t0)
}

fn chain(left: u64, done: oneshot::Sender<()>) {
    tokio::spawn(async move {
        if left <= 1 {
            let _ = done.send(());
        } else {
            chain(left - 1, done);
        }
    });
}

fn chained_spawn(rt: &Runtime, n: u64) -> u64 {
    let t0 = Instant::now();
    let root = rt.spawn(async move {
        let (tx, rx) = oneshot::channel();
        if n == 0 {
            return;
        }
        chain(n, tx);
        rx.await.unwrap();
    });
    rt.block_on(root).unwrap();
    nanos_since(t0)
}

fn timers(rt: &Runtime, n: u64, seed: u64) -> (u64, Vec<i64>) {
    let mut rng = SplitMix64(seed);
    let delays: Vec<u64> = (0..n).map(|_| rng.next() % 50001).collect();
    let t0 = Instant::now();
    let root = rt.spawn(async move {
        let hs: Vec<_> = delays
            .into_iter()
            .map(|d| {
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_micros(d);
                    tokio::time::sleep_until(deadline).await;
                    let woke = Instant::now();
                    if woke >= deadline {
                        (woke - deadline).as_nanos() as i64
                    } else {
                        -((deadline - woke).as_nanos() as i64)
                    }
                })
            })
            .collect();
        let mut late = Vec::with_capacity(hs.len());
        for h in hs {
            late.push(h.await.unwrap());
        }
        late
    });
    let late = rt.block_on(root).unwrap();
    let ns = nanos_since(t0);
    (ns, late)
}

struct IdleResult {
    ns_total: u64,
    ns_cancel: u64,
    baseline: u64,
    peak: u64,
    after: u64,
}

fn spawn_idle(rt: &Runtime, n: u64) -> IdleResult {
    let baseline = rss_bytes();
    let started = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let c = started.clone();
    let root = rt.spawn(async move {
        let mut senders = Vec::with_capacity(n as usize);
        let mut hs = Vec::with_capacity(n as usize);
        for _ in 0..n {
            // Each task waits on its own oneshot, whose sender is kept alive
            // (and never used) until after the tasks are aborted.
            let (tx, rx) = oneshot::channel::<()>();
            let c = c.clone();
            hs.push(tokio::spawn(async move {
                c.fetch_add(1, Ordering::Relaxed);
                let _ = rx.await;
            }));
            senders.push(tx);
        }
        (senders, hs)
    });
    let (senders, hs) = rt.block_on(root).unwrap();
    while started.load(Ordering::Relaxed) < n as usize {
        std::thread::sleep(Duration::from_micros(200));
    }
    let ns_total = nanos_since(t0);
    // Let the workers finish parking before reading RSS.
    std::thread::sleep(Duration::from_millis(20));
    let peak = rss_bytes();

    let t1 = Instant::now();
    for h in &hs {
        h.abort();
    }
    rt.block_on(async move {
        for h in hs {
            let r = h.await;
            debug_assert!(r.is_err());
        }
    });
    let ns_cancel = nanos_since(t1);
    drop(senders);
    // Let the allocator settle briefly (no malloc_trim: a Rust user would not call it).
    std::thread::sleep(Duration::from_millis(200));
    let after = rss_bytes();
    IdleResult {
        ns_total,
        ns_cancel,
        baseline,
        peak,
        after,
    }
}

fn blocking_seq(rt: &Runtime, n: u64) -> u64 {
    let t0 = Instant::now();
    let root = rt.spawn(async move {
        for _ in 0..n {
            tokio::task::spawn_blocking(|| {}).await.unwrap();
        }
    });
    rt.block_on(root).unwrap();
    nanos_since(t0)
}

fn blocking_conc(rt: &Runtime, n: u64, p: u64) -> u64 {
    let t0 = Instant::now();
    let root = rt.spawn(async move {
        // p loops, each with one spawn_blocking in flight: p at a time, n in all.
        let hs: Vec<_> = (0..p)
            .map(|i| {
                let share = n / p + u64::from(i < n % p);
                tokio::spawn(async move {
                    for _ in 0..share {
                        tokio::task::spawn_blocking(|| {}).await.unwrap();
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
    rt.block_on(root).unwrap();
    nanos_since(t0)
}

// ---------------------------------------------------------------- sync
// Same shapes as weft's (bench/weft_bench.cpp): `n` rounds; one op is one
// message / one acquire / one wake-up.
const MPSC_PRODUCERS: u64 = 5;
const MPSC_MESSAGES: u64 = 1000;
const MPSC_CAPACITY: usize = 1024;
const CONTENDERS: u64 = 6;
const ACQUIRES_PER_TASK: u64 = 1000;
const FAN_OUT: u64 = 500;

fn mpsc_run(rt: &Runtime, rounds: u64, bounded: bool) -> u64 {
    let t0 = Instant::now();
    rt.block_on(async move {
        tokio::spawn(async move {
            for _ in 0..rounds {
                let mut got = 0u64;
                if bounded {
                    let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(MPSC_CAPACITY);
                    for _ in 0..MPSC_PRODUCERS {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            for i in 0..MPSC_MESSAGES {
                                tx.send(i).await.unwrap();
                            }
                        });
                    }
                    drop(tx);
                    while rx.recv().await.is_some() {
                        got += 1;
                    }
                } else {
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
                    for _ in 0..MPSC_PRODUCERS {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            for i in 0..MPSC_MESSAGES {
                                tx.send(i).unwrap();
                            }
                        });
                    }
                    drop(tx);
                    while rx.recv().await.is_some() {
                        got += 1;
                    }
                }
                assert_eq!(got, MPSC_PRODUCERS * MPSC_MESSAGES);
            }
        })
        .await
        .unwrap();
    });
    nanos_since(t0)
}

fn semaphore_run(rt: &Runtime, rounds: u64) -> u64 {
    let t0 = Instant::now();
    rt.block_on(async move {
        tokio::spawn(async move {
            for _ in 0..rounds {
                let sem = Arc::new(tokio::sync::Semaphore::new(2));
                let n = Arc::new(AtomicUsize::new(0));
                let hs: Vec<_> = (0..CONTENDERS)
                    .map(|_| {
                        let sem = sem.clone();
                        let n = n.clone();
                        tokio::spawn(async move {
                            for _ in 0..ACQUIRES_PER_TASK {
                                let _p = sem.acquire().await.unwrap();
                                n.fetch_add(1, Ordering::Relaxed);
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            }
        })
        .await
        .unwrap();
    });
    nanos_since(t0)
}

fn mutex_run(rt: &Runtime, rounds: u64) -> u64 {
    let t0 = Instant::now();
    rt.block_on(async move {
        tokio::spawn(async move {
            for _ in 0..rounds {
                let m = Arc::new(tokio::sync::Mutex::new(0u64));
                let hs: Vec<_> = (0..CONTENDERS)
                    .map(|_| {
                        let m = m.clone();
                        tokio::spawn(async move {
                            for _ in 0..ACQUIRES_PER_TASK {
                                *m.lock().await += 1;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
                assert_eq!(*m.lock().await, CONTENDERS * ACQUIRES_PER_TASK);
            }
        })
        .await
        .unwrap();
    });
    nanos_since(t0)
}

// Fan-out: 500 tasks wait on one tokio::sync::Notify, the analogue of
// weft's Event (notify_waiters wakes every registered waiter, as Event::set
// does). notify_waiters stores no permit, so a waiter that has not registered
// yet would miss it: each task enables its Notified future (which registers
// it) before it counts itself ready, and the root calls notify_waiters only
// once all 500 are counted, as weft's side sets its Event.
fn notify_run(rt: &Runtime, rounds: u64) -> u64 {
    let t0 = Instant::now();
    rt.block_on(async move {
        tokio::spawn(async move {
            for _ in 0..rounds {
                let notify = Arc::new(tokio::sync::Notify::new());
                let ready = Arc::new(AtomicUsize::new(0));
                let hs: Vec<_> = (0..FAN_OUT)
                    .map(|_| {
                        let notify = notify.clone();
                        let ready = ready.clone();
                        tokio::spawn(async move {
                            let notified = notify.notified();
                            tokio::pin!(notified);
                            notified.as_mut().enable();
                            // Release: the registration above happens before
                            // the root's notify_waiters (it loads with Acquire).
                            ready.fetch_add(1, Ordering::Release);
                            notified.await;
                        })
                    })
                    .collect();
                while (ready.load(Ordering::Acquire) as u64) < FAN_OUT {
                    tokio::task::yield_now().await;
                }
                notify.notify_waiters();
                for h in hs {
                    h.await.unwrap();
                }
            }
        })
        .await
        .unwrap();
    });
    nanos_since(t0)
}

// ---------------------------------------------------------------- main

/// cpu_fanout: the sum of n u32 values (value i & 1023) in p chunks, one
/// spawn_blocking per chunk, spawned from a task that awaits them in order.
fn cpu_fanout(rt: &Runtime, data: std::sync::Arc<Vec<u32>>, n: u64, p: u64) -> (u64, u64) {
    let t0 = Instant::now();
    let root = rt.spawn(async move {
        let hs: Vec<_> = (0..p)
            .map(|c| {
                let d = data.clone();
                let (b, e) = ((n * c / p) as usize, (n * (c + 1) / p) as usize);
                tokio::task::spawn_blocking(move || d[b..e].iter().map(|&x| x as u64).sum::<u64>())
            })
            .collect();
        let mut total = 0u64;
        for h in hs {
            total += h.await.unwrap();
        }
        total
    });
    let sum = rt.block_on(root).unwrap();
    (nanos_since(t0), sum)
}

fn main() {
    let a = parse_args();
    let w = a.workload.as_str();
    let known = [
        "spawn_many",
        "spawn_remote",
        "yield_many",
        "ping_pong",
        "chained_spawn",
        "timers",
        "spawn_idle",
        "blocking_seq",
        "blocking_conc",
        "cpu_fanout",
        "mpsc_bounded",
        "mpsc_unbounded",
        "semaphore",
        "notify",
        "mutex",
    ];
    let mut out = Json::new(w);
    if w == "io_nop" {
        out.str("skipped", "io_nop is the raw liburing peer's workload; Tokio has no io_uring");
        out.print();
        return;
    }
    if !known.contains(&w) {
        out.str("skipped", "unknown workload");
        out.print();
        return;
    }

    let rt = Builder::new_multi_thread()
        .worker_threads(a.workers)
        .enable_time()
        .build()
        .expect("cannot build the Tokio runtime");
    warm_up(&rt);
    out.int("workers", a.workers);

    match w {
        "spawn_many" => {
            let n = a.n.unwrap_or(1_000_000);
            out.int("n", n);
            let ns = spawn_many(&rt, n);
            out.timing(ns, n);
        }
        "spawn_remote" => {
            let n = a.n.unwrap_or(100_000);
            out.int("n", n);
            let ns = spawn_remote(&rt, n);
            out.timing(ns, n);
            out.str("note", "Runtime::spawn from the main thread (outside the runtime), then block_on awaiting the JoinHandles");
        }
        "yield_many" => {
            out.int("t", a.t);
            out.int("y", a.y);
            let ns = yield_many(&rt, a.t, a.y);
            out.timing(ns, a.t * a.y);
        }
        "ping_pong" => {
            let p = a.p.unwrap_or(1000);
            out.int("p", p);
            out.int("r", a.r);
            let ns = ping_pong(&rt, p, a.r);
            // One op is one hop (one message through a fresh oneshot); a round trip is 2 hops.
            out.timing(ns, 2 * p * a.r);
            out.null("cross_worker_wakes");
        }
        "chained_spawn" => {
            let n = a.n.unwrap_or(100_000);
            out.int("n", n);
            let ns = chained_spawn(&rt, n);
            out.timing(ns, n);
        }
        "timers" => {
            let n = a.n.unwrap_or(100_000);
            out.int("n", n);
            out.int("seed", a.seed);
            let (ns, mut late) = timers(&rt, n, a.seed);
            late.sort_unstable();
            out.timing(ns, n);
            out.int("p50_late_ns", percentile(&late, 50.0));
            out.int("p99_late_ns", percentile(&late, 99.0));
        }
        "spawn_idle" => {
            let n = a.n.unwrap_or(1_000_000);
            out.int("n", n);
            let r = spawn_idle(&rt, n);
            out.timing(r.ns_total, n);
            out.int("ns_cancel", r.ns_cancel);
            let grown = r.peak.saturating_sub(r.baseline);
            out.float("bytes_per_task", grown as f64 / n.max(1) as f64);
            out.int("baseline_rss", r.baseline);
            out.int("peak_rss", r.peak);
            out.int("after_cancel_rss", r.after);
            let returned = if grown > 0 {
                (r.peak as f64 - r.after as f64) / grown as f64 * 100.0
            } else {
                f64::NAN
            };
            out.float("returned_pct", returned);
            out.str("note", "each task awaits its own oneshot; counts the task, its JoinHandle and the oneshot; cancel = abort every JoinHandle and await it");
        }
        "blocking_seq" => {
            let n = a.n.unwrap_or(100_000);
            out.int("n", n);
            let ns = blocking_seq(&rt, n);
            out.timing(ns, n);
        }
        "blocking_conc" => {
            let n = a.n.unwrap_or(100_000);
            let p = a.p.unwrap_or(64).max(1);
            out.int("n", n);
            out.int("p", p);
            let ns = blocking_conc(&rt, n, p);
            out.timing(ns, n);
        }
        "cpu_fanout" => {
            let n = a.n.unwrap_or(100_000_000);
            let p = a.p.unwrap_or(10_000).max(1);
            out.int("n", n);
            out.int("p", p);
            let data: std::sync::Arc<Vec<u32>> =
                std::sync::Arc::new((0..n).map(|i| (i & 1023) as u32).collect());
            // Warm the blocking pool's threads, as the TBB peer warms its arena.
            let _ = cpu_fanout(&rt, data.clone(), n.min(1024), 16);
            let (ns, sum) = cpu_fanout(&rt, data, n, p);
            out.timing(ns, p);
            out.int("sum", sum);
            out.str("note", "one spawn_blocking per chunk from a task, awaited in order; ns_per_op per chunk");
        }
        "mpsc_bounded" | "mpsc_unbounded" => {
            let bounded = w == "mpsc_bounded";
            let n = a.n.unwrap_or(if bounded { 300 } else { 500 });
            out.int("n", n);
            let ns = mpsc_run(&rt, n, bounded);
            out.timing(ns, n * MPSC_PRODUCERS * MPSC_MESSAGES);
            out.str("note", if bounded { "tokio::sync::mpsc::channel(1024), 5 producers x 1000, one consumer" } else { "tokio::sync::mpsc::unbounded_channel, 5 producers x 1000, one consumer" });
        }
        "semaphore" => {
            let n = a.n.unwrap_or(500);
            out.int("n", n);
            let ns = semaphore_run(&rt, n);
            out.timing(ns, n * CONTENDERS * ACQUIRES_PER_TASK);
            out.str("note", "tokio::sync::Semaphore(2), 6 tasks x 1000 acquire/release per round");
        }
        "mutex" => {
            let n = a.n.unwrap_or(2000);
            out.int("n", n);
            let ns = mutex_run(&rt, n);
            out.timing(ns, n * CONTENDERS * ACQUIRES_PER_TASK);
            out.str("note", "tokio::sync::Mutex, 6 tasks x 1000 lock/unlock per round");
        }
        "notify" => {
            let n = a.n.unwrap_or(1000);
            out.int("n", n);
            let ns = notify_run(&rt, n);
            out.timing(ns, n * FAN_OUT);
            out.str("note", "per round: spawn 500 waiters on a tokio::sync::Notify (Notified::enable first), notify_waiters() once they wait, join all");
        }
        _ => unreachable!(),
    }
    let _ = (a.depth, a.ops);
    out.print();
    // Do not wait for idle tasks or blocking threads at exit.
    rt.shutdown_background();
}
