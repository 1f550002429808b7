// Go peer for weft's benchmark suite (stdlib only). See bench/peers/README.md
// for the command-line and output contract shared by every peer.
package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const peer = "go"

type args struct {
	workload string
	workers  int
	n        int64 // -1: workload default
	t, y     int64
	p        int64 // -1: workload default
	r        int64
	depth    int64
	seed     uint64
	ops      int64
}

func usage(msg string) {
	fmt.Fprintf(os.Stderr, "weft-peer-go: %s\n", msg)
	fmt.Fprintln(os.Stderr, "usage: weft-peer-go --workload NAME [--workers 2] [--n N] [--t T] [--y Y] [--p P] [--r R] [--depth D] [--seed S] [--ops OPS]")
	os.Exit(2)
}

func parseArgs() args {
	a := args{workers: 2, n: -1, t: 1000, y: 1000, p: -1, r: 100, depth: 32, seed: 42, ops: 1000000}
	argv := os.Args[1:]
	for i := 0; i < len(argv); i += 2 {
		key := argv[i]
		if i+1 >= len(argv) {
			usage("missing value for " + key)
		}
		val := argv[i+1]
		num := func() int64 {
			v, err := strconv.ParseUint(val, 10, 63)
			if err != nil {
				usage("bad number for " + key + ": " + val)
			}
			return int64(v)
		}
		switch key {
		case "--workload":
			a.workload = val
		case "--workers":
			a.workers = int(num())
		case "--n":
			a.n = num()
		case "--t":
			a.t = num()
		case "--y":
			a.y = num()
		case "--p":
			a.p = num()
		case "--r":
			a.r = num()
		case "--depth":
			a.depth = num()
		case "--seed":
			v, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				usage("bad number for --seed: " + val)
			}
			a.seed = v
		case "--ops":
			a.ops = num()
		default:
			usage("unknown option " + key)
		}
	}
	if a.workload == "" {
		usage("--workload is required")
	}
	if a.workers < 1 {
		usage("--workers must be >= 1")
	}
	return a
}

// ------------------------------------------------------------------ output

type jsonOut struct{ parts []string }

func newOut(workload string) *jsonOut {
	j := &jsonOut{}
	j.str("peer", peer)
	j.str("workload", workload)
	return j
}

func (j *jsonOut) str(k, v string) { j.parts = append(j.parts, strconv.Quote(k)+":"+strconv.Quote(v)) }
func (j *jsonOut) int(k string, v int64) {
	j.parts = append(j.parts, strconv.Quote(k)+":"+strconv.FormatInt(v, 10))
}
func (j *jsonOut) float(k string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		j.parts = append(j.parts, strconv.Quote(k)+":null")
		return
	}
	j.parts = append(j.parts, strconv.Quote(k)+":"+strconv.FormatFloat(v, 'f', 3, 64))
}
func (j *jsonOut) null(k string) { j.parts = append(j.parts, strconv.Quote(k)+":null") }
func (j *jsonOut) timing(ns, ops int64) {
	j.int("ops", ops)
	j.int("ns_total", ns)
	d := ops
	if d < 1 {
		d = 1
	}
	j.float("ns_per_op", float64(ns)/float64(d))
}
func (j *jsonOut) print() { fmt.Println("{" + strings.Join(j.parts, ",") + "}") }

// ------------------------------------------------------------------ helpers

// splitmix64, identical in every peer so the timer delays match.
type splitMix64 struct{ s uint64 }

func (g *splitMix64) next() uint64 {
	g.s += 0x9E3779B97F4A7C15
	z := g.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// percentile is nearest-rank on a sorted slice.
func percentile(sorted []int64, pct float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(pct / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// rssBytes is resident pages (from /proc/self/statm) times the page size.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// warmUp starts goroutines on every P so the scheduler's structures exist
// before anything is timed.
func warmUp() {
	var wg sync.WaitGroup
	wg.Add(1000)
	for i := 0; i < 1000; i++ {
		go wg.Done()
	}
	wg.Wait()
}

// ------------------------------------------------------------------ workloads

func spawnMany(n int64) int64 {
	t0 := time.Now()
	done := make(chan struct{})
	go func() { // spawn from inside a goroutine
		var wg sync.WaitGroup
		wg.Add(int(n))
		for i := int64(0); i < n; i++ {
			go wg.Done()
		}
		wg.Wait()
		close(done)
	}()
	<-done
	return time.Since(t0).Nanoseconds()
}

func spawnRemote(n int64) int64 {
	t0 := time.Now()
	var wg sync.WaitGroup
	wg.Add(int(n))
	for i := int64(0); i < n; i++ {
		go wg.Done()
	}
	wg.Wait()
	return time.Since(t0).Nanoseconds()
}

func yieldMany(t, y int64) int64 {
	t0 := time.Now()
	var wg sync.WaitGroup
	wg.Add(int(t))
	for i := int64(0); i < t; i++ {
		go func() {
			for j := int64(0); j < y; j++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return time.Since(t0).Nanoseconds()
}

// msg carries the channel for the reply, so every hop uses a new channel.
type msg struct {
	v     int64
	reply chan msg
}

func pong(in chan msg) {
	for {
		m, ok := <-in
		if !ok {
			return
		}
		next := make(chan msg, 1)
		m.reply <- msg{v: m.v + 1, reply: next}
		in = next
	}
}

func ping(r int64, wg *sync.WaitGroup) {
	out := make(chan msg, 1)
	go pong(out)
	var v int64
	for i := int64(0); i < r; i++ {
		reply := make(chan msg, 1)
		out <- msg{v: v, reply: reply}
		m := <-reply
		v = m.v + 1
		out = m.reply
	}
	close(out) // ends the partner
	if v != 2*r {
		panic("ping_pong: wrong count")
	}
	wg.Done()
}

func pingPong(p, r int64) int64 {
	t0 := time.Now()
	var wg sync.WaitGroup
	wg.Add(int(p))
	for i := int64(0); i < p; i++ {
		go ping(r, &wg)
	}
	wg.Wait()
	return time.Since(t0).Nanoseconds()
}

func chain(left int64, done chan struct{}) {
	if left <= 1 {
		close(done)
		return
	}
	go chain(left-1, done)
}

func chainedSpawn(n int64) int64 {
	t0 := time.Now()
	done := make(chan struct{})
	if n > 0 {
		go chain(n, done)
		<-done
	}
	return time.Since(t0).Nanoseconds()
}

func timers(n int64, seed uint64) (int64, []int64) {
	g := splitMix64{seed}
	delays := make([]time.Duration, n)
	for i := range delays {
		delays[i] = time.Duration(g.next()%50001) * time.Microsecond
	}
	late := make([]int64, n)
	t0 := time.Now()
	var wg sync.WaitGroup
	wg.Add(int(n))
	for i := range delays {
		go func(i int) {
			start := time.Now()
			time.Sleep(delays[i])
			late[i] = time.Since(start).Nanoseconds() - delays[i].Nanoseconds()
			wg.Done()
		}(i)
	}
	wg.Wait()
	return time.Since(t0).Nanoseconds(), late
}

type idleResult struct {
	ns, nsCancel, baseline, peak, after int64
}

func spawnIdle(n int64) idleResult {
	var res idleResult
	res.baseline = rssBytes()
	var started atomic.Int64
	quit := make(chan struct{})
	own := make([]chan struct{}, n) // never closed
	var wg sync.WaitGroup
	wg.Add(int(n))
	t0 := time.Now()
	for i := range own {
		c := make(chan struct{})
		own[i] = c
		go func() {
			started.Add(1)
			select {
			case <-c:
			case <-quit:
			}
			wg.Done()
		}()
	}
	for started.Load() < n {
		time.Sleep(200 * time.Microsecond)
	}
	res.ns = time.Since(t0).Nanoseconds()
	time.Sleep(20 * time.Millisecond)
	res.peak = rssBytes()

	t1 := time.Now()
	close(quit)
	wg.Wait()
	res.nsCancel = time.Since(t1).Nanoseconds()
	own = nil
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(200 * time.Millisecond)
	res.after = rssBytes()
	runtime.KeepAlive(own)
	return res
}

// ------------------------------------------------------------------ main

func main() {
	a := parseArgs()
	out := newOut(a.workload)
	def := func(v, d int64) int64 {
		if v < 0 {
			return d
		}
		return v
	}
	switch a.workload {
	case "io_nop":
		out.str("skipped", "io_nop is the raw liburing peer's workload; Go has no io_uring")
		out.print()
		return
	case "blocking_seq", "blocking_conc":
		out.str("skipped", "not applicable: Go has no run_in_executor/spawn_blocking (blocking calls just occupy an M)")
		out.print()
		return
	case "mpsc_bounded", "mpsc_unbounded", "semaphore", "notify", "mutex":
		out.str("skipped", "the sync workloads compare weft with tokio::sync only (issue: sync)")
		out.print()
		return
	case "spawn_many", "spawn_remote", "yield_many", "ping_pong", "chained_spawn", "timers", "spawn_idle":
	default:
		out.str("skipped", "unknown workload")
		out.print()
		return
	}

	runtime.GOMAXPROCS(a.workers)
	warmUp()
	out.int("workers", int64(a.workers))

	switch a.workload {
	case "spawn_many":
		n := def(a.n, 1000000)
		out.int("n", n)
		out.timing(spawnMany(n), n)
		out.str("note", "go statements from inside a goroutine, sync.WaitGroup to await")
	case "spawn_remote":
		n := def(a.n, 100000)
		out.int("n", n)
		out.timing(spawnRemote(n), n)
		out.str("note", "Go has no thread outside the runtime: spawned from the main goroutine, sync.WaitGroup to await")
	case "yield_many":
		out.int("t", a.t)
		out.int("y", a.y)
		out.timing(yieldMany(a.t, a.y), a.t*a.y)
	case "ping_pong":
		p := def(a.p, 1000)
		out.int("p", p)
		out.int("r", a.r)
		// One op is one hop (one message through a fresh 1-buffered channel).
		out.timing(pingPong(p, a.r), 2*p*a.r)
		out.null("cross_worker_wakes")
	case "chained_spawn":
		n := def(a.n, 100000)
		out.int("n", n)
		out.timing(chainedSpawn(n), n)
	case "timers":
		n := def(a.n, 100000)
		out.int("n", n)
		out.int("seed", int64(a.seed))
		ns, late := timers(n, a.seed)
		sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
		out.timing(ns, n)
		out.int("p50_late_ns", percentile(late, 50))
		out.int("p99_late_ns", percentile(late, 99))
	case "spawn_idle":
		n := def(a.n, 1000000)
		out.int("n", n)
		r := spawnIdle(n)
		out.timing(r.ns, n)
		out.int("ns_cancel", r.nsCancel)
		grown := r.peak - r.baseline
		out.float("bytes_per_task", float64(grown)/math.Max(1, float64(n)))
		out.int("baseline_rss", r.baseline)
		out.int("peak_rss", r.peak)
		out.int("after_cancel_rss", r.after)
		ret := math.NaN()
		if grown > 0 {
			ret = float64(r.peak-r.after) / float64(grown) * 100
		}
		out.float("returned_pct", ret)
		out.str("note", "each goroutine selects on its own never-closed channel and a shared quit channel; cancel = close(quit); then runtime.GC() and debug.FreeOSMemory() before after_cancel_rss")
	}
	out.print()
}
