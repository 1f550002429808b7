"""The server workloads of bench/run: tcp_echo, http_hello, resp, file_read.

Imported by bench/run (not a program of its own). Each workload runs weft's
program and its peers with a client nobody here tuned for either side, in the
same run, alternating weft and each peer per repetition like the other
workloads. Figures are throughputs (higher is better), so the ratio printed
is weft/peer and a target is met when it is >= the limit; p50/p99 latency
(from the client) stands beside each throughput.

  workload    weft program                           peers               client
  tcp_echo    build/release/examples/echo_server     Tokio, Go echo      weft_echo_client (bench/load/)
  http_hello  build/release/examples/http_hello      nginx-light         wrk --latency
  resp        build/release/examples/resp_server     redis-server 7      redis-benchmark --csv
  file_read   build/release/bench/weft_file_read     fio (io_uring)      (none: each reports itself)

Servers are started by this module on 127.0.0.1 and a free port, each in a
process group of its own (and with PR_SET_PDEATHSIG, so a runner killed
outright takes them along); readiness is a successful TCP connect, never a
sleep. They are stopped by process id in a `finally`: SIGTERM, then SIGKILL
after 5 s, then SIGKILL for any process still in the server's group (nginx's
workers), found through /proc by process-group id, never by name.

The weft programs' command-line contract is in the README ("Server
workloads"); a weft program that is not built gives "skipped: ..." for its
row and the peers still run, so their figures are there to compare with the
moment it exists.
"""
import ctypes
import http.client
import json
import mmap
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(ROOT, "build", "release")
PEER_BIN = os.path.join(HERE, "peers", "bin")
RESULTS = os.path.join(HERE, "results")

WEFT_PROGRAMS = {
    "tcp_echo": os.path.join(BUILD, "examples", "echo_server"),
    "http_hello": os.path.join(BUILD, "examples", "http_hello"),
    "resp": os.path.join(BUILD, "examples", "resp_server"),
    "file_read": os.path.join(BUILD, "bench", "weft_file_read"),
}
ECHO_CLIENT = os.path.join(BUILD, "bench", "weft_echo_client")

# workload -> peers, in the order they run after weft.
WORKLOADS = [
    ("tcp_echo", ["tokio", "go"]),
    ("http_hello", ["nginx"]),
    ("resp", ["redis"]),
    ("file_read", ["fio"]),
]
NAMES = [w for w, _ in WORKLOADS]
PEERS = ["nginx", "redis", "fio"]  # peers only these workloads have (tokio/go are shared)

UNIT = {"tcp_echo": "messages/s", "http_hello": "requests/s", "resp": "requests/s", "file_read": "IOPS"}

# The figures of one run: resp has one per redis-benchmark test and pipeline.
RESP_TESTS = ["PING_INLINE", "SET", "GET"]


def figures(workload, o):
    if workload == "resp":
        return [t.lower() + ("" if p == 1 else " -P%d" % p) for p in (1, o.pipeline) for t in RESP_TESTS]
    return [workload]


# Targets: weft/peer of the medians >= limit, for every figure of the workload.
TARGETS = {
    "tcp_echo": [("tokio", 1.5)],
    "http_hello": [("nginx", 1.2)],
    "resp": [("redis", 1.2)],
    "file_read": [("fio", 0.95)],
}

START_TIMEOUT = 15.0  # seconds for a server to accept a connection


def log(msg=""):
    print(msg, flush=True)


class Skip(Exception):
    """This peer or program cannot run here; the row says why."""


class Failed(Exception):
    """A run went wrong: counted as a failed run of its row."""


# ------------------------------------------------------------------ processes

def _pdeathsig():
    # Runs in the child between fork and exec: if the runner dies, so does
    # the server (prctl(PR_SET_PDEATHSIG, SIGKILL)); best effort.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:  # noqa: BLE001 - never fail the exec over this
        pass


def group_members(pgid):
    """Process ids whose process group is pgid (from /proc/<pid>/stat)."""
    out = []
    if pgid <= 1:
        return out  # never the kernel's or init's group
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[2] == str(pgid):
            out.append(int(d))
    return out


def _cpu_ticks(pid):
    """utime + stime of one process, all its threads, in clock ticks (0 if gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


class CpuMeter:
    """CPU time of the client and of the server over one measure.

    On these 2-core machines client and server share the CPUs, so a rate can
    be capped by the client rather than by the server: the client's CPU
    (cores = CPU seconds / wall seconds) says how close it ran to its limit
    (a single-threaded client at 1.0 speeds up only if the server makes each
    request cheaper for it). The client is every child process the runner
    waited for during the measure (RUSAGE_CHILDREN); the server is every
    process of its group, read from /proc before and after (a member that
    exits in between loses its share, so the figure is a lower bound).
    file_read has no server: its "client" is the reading program itself.
    """

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, srv):
        self.pgid = srv.proc.pid if srv is not None and srv.proc is not None else None

    @staticmethod
    def _children_s():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    def _server_ticks(self):
        if self.pgid is None:
            return None
        return sum(_cpu_ticks(pid) for pid in group_members(self.pgid))

    def start(self):
        self.s0 = self._server_ticks()
        self.c0 = self._children_s()
        self.t0 = time.monotonic()

    def stop(self):
        wall = time.monotonic() - self.t0
        client = self._children_s() - self.c0
        s1 = self._server_ticks()
        server = None if s1 is None else max(0, s1 - self.s0) / self.TICK
        return {"wall_s": round(wall, 3), "client_cpu_s": round(client, 3),
                "server_cpu_s": None if server is None else round(server, 3)}


def cpu_cores(cpu, key):
    """CPU seconds per wall second of one run's CpuMeter figures (None if absent)."""
    if not cpu or cpu.get(key) is None or not cpu.get("wall_s"):
        return None
    return cpu[key] / cpu["wall_s"]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process: started in its own session, stopped by pid."""

    def __init__(self, name, cmd_for_port, workdir, env=None):
        self.name = name
        self.cmd_for_port = cmd_for_port
        self.workdir = workdir
        self.env = env
        self.proc = None
        self.port = None
        self.log_path = os.path.join(workdir, "%s.log" % name)

    def log_tail(self, n=5):
        try:
            with open(self.log_path, errors="replace") as f:
                lines = [l.strip() for l in f.read().splitlines() if l.strip()]
            return " | ".join(lines[-n:])
        except OSError:
            return ""

    def start(self):
        # A port picked free can be taken before the server binds it: a server
        # that exits during start-up is retried on another port, twice.
        for attempt in range(3):
            self.port = free_port()
            cmd = self.cmd_for_port(self.port)
            with open(self.log_path, "w") as logf:
                try:
                    self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                                 stderr=subprocess.STDOUT, cwd=self.workdir, env=self.env,
                                                 start_new_session=True, preexec_fn=_pdeathsig)
                except OSError as e:
                    raise Failed("cannot start %s: %s" % (cmd[0], e))
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                rc = self.proc.poll()
                if rc is not None:
                    break
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        return
                except OSError:
                    time.sleep(0.02)  # polling interval of the readiness check, not a synchronisation
            else:
                self.stop()
                raise Failed("%s did not accept on port %d within %.0f s (log: %s)"
                             % (self.name, self.port, START_TIMEOUT, self.log_tail()))
            self.stop()
            if attempt == 2:
                raise Failed("%s exited at start-up with status %s (log: %s)" % (self.name, rc, self.log_tail()))

    def stop(self):
        p = self.proc
        if p is None:
            return
        self.proc = None
        pgid = p.pid  # start_new_session: the server leads its own group
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            except ProcessLookupError:
                pass
        # Whatever the server left in its group (nginx workers): by pid. The
        # group id cannot be reused while any member lives.
        for _ in range(50):
            left = group_members(pgid)
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)


def run_client(cmd, timeout, env=None):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise Failed("%s: timeout after %.0f s" % (os.path.basename(cmd[0]), timeout))
    except OSError as e:
        raise Failed("cannot run %s: %s" % (cmd[0], e))
    if p.returncode != 0:
        err = (p.stderr.strip() or p.stdout.strip()).splitlines()
        raise Failed("%s exit %d%s" % (os.path.basename(cmd[0]), p.returncode, (": " + err[-1][:200]) if err else ""))
    return p.stdout


def one_json(text, what):
    lines = [l for l in text.splitlines() if l.strip()]
    if len(lines) != 1:
        raise Failed("%s: expected one JSON line, got %d" % (what, len(lines)))
    try:
        return json.loads(lines[0])
    except ValueError as e:
        raise Failed("%s: bad JSON: %s" % (what, e))


def need_exe(path, why):
    if not os.access(path, os.X_OK):
        raise Skip(why)
    return path


def need_tool(name, package):
    p = shutil.which(name)
    if not p:
        raise Skip("%s not installed (Debian package %s; bench/peers/install.sh installs it)" % (name, package))
    return p


def weft_server_cmd(workload, o):
    exe = need_exe(WEFT_PROGRAMS[workload], "%s not built (examples/%s.cpp)" % (
        os.path.relpath(WEFT_PROGRAMS[workload], ROOT), os.path.basename(WEFT_PROGRAMS[workload])))
    knobs = list(getattr(o, "weft_knob_args", []))  # bench/run's knob flags and --weft-arg
    return lambda port: [exe, "--port", str(port), "--workers", str(o.workers)] + knobs


def fig(rate, p50_ns=None, p99_ns=None):
    return {"rate": float(rate), "p50_ns": p50_ns, "p99_ns": p99_ns}


# ------------------------------------------------------------------ tcp_echo

class TcpEcho:
    name = "tcp_echo"

    def __init__(self, o, workdir):
        self.o = o
        self.workdir = workdir

    def prepare(self):
        need_exe(ECHO_CLIENT, "%s not built (bench/load/echo_client.cpp; a release build makes it)"
                 % os.path.relpath(ECHO_CLIENT, ROOT))

    def server(self, peer):
        o = self.o
        env = None
        if peer == "weft":
            cmd = weft_server_cmd(self.name, o)
        else:
            exe = need_exe(os.path.join(PEER_BIN, "weft-peer-%s-echo" % peer),
                           "weft-peer-%s-echo not built (bench/peers/install.sh)" % peer)
            cmd = lambda port: [exe, "--port", str(port), "--workers", str(o.workers)]
            if peer == "go":
                env = dict(os.environ, GOMAXPROCS=str(o.workers))
        return Server(peer, cmd, self.workdir, env)

    def measure(self, peer, srv):
        o = self.o
        cmd = [ECHO_CLIENT, "--port", str(srv.port), "--connections", str(o.connections),
               "--size", str(o.msg_size), "--seconds", str(o.seconds), "--warmup", str(o.warmup),
               "--threads", str(o.client_threads), "--label", peer]
        d = one_json(run_client(cmd, o.seconds + o.warmup + 60), "weft_echo_client")
        return {"tcp_echo": fig(d["msgs_per_sec"], d.get("p50_ns"), d.get("p99_ns"))}, d


# ------------------------------------------------------------------ http_hello

NGINX_CONF = """\
# Generated by bench/servers.py for the http_hello workload.
{user}daemon off;
master_process on;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    server_tokens off;
    keepalive_timeout 65;
    # nginx closes a keep-alive connection after 1000 requests by default;
    # weft's server never does, so neither does nginx here.
    keepalive_requests 100000000;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = / {{
            default_type text/plain;
            return 200 "Hello, World!";
        }}
    }}
}}
"""

LAT_RE = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$")
UNIT_NS = {"us": 1e3, "ms": 1e6, "s": 1e9}


def check_http(port):
    """One GET / before the load: 200 and the 13-byte body, or Failed."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/")
        r = c.getresponse()
        body = r.read()
        c.close()
    except (OSError, http.client.HTTPException) as e:
        raise Failed("GET / failed: %s" % e)
    if r.status != 200 or body != b"Hello, World!":
        raise Failed("GET / gave %d %r, expected 200 'Hello, World!'" % (r.status, body[:40]))


def parse_wrk(out):
    rate = None
    lat = {}
    errors = []
    for line in out.splitlines():
        m = LAT_RE.match(line)
        if m:
            lat[m.group(1)] = float(m.group(2)) * UNIT_NS[m.group(3)]
        elif line.startswith("Requests/sec:"):
            rate = float(line.split(":", 1)[1])
        elif "Non-2xx" in line or line.strip().startswith("Socket errors"):
            errors.append(line.strip())
    if rate is None:
        raise Failed("wrk: no Requests/sec line in its output")
    return rate, lat.get("50"), lat.get("99"), errors


class HttpHello:
    name = "http_hello"

    def __init__(self, o, workdir):
        self.o = o
        self.workdir = workdir
        self.wrk = None

    def prepare(self):
        self.wrk = need_tool("wrk", "wrk")

    def server(self, peer):
        o = self.o
        if peer == "weft":
            return Server(peer, weft_server_cmd(self.name, o), self.workdir)
        nginx = need_tool("nginx", "nginx-light")
        prefix = os.path.join(self.workdir, "nginx")
        os.makedirs(prefix, exist_ok=True)
        conf = os.path.join(prefix, "nginx.conf")
        user = ""
        if os.geteuid() == 0:  # only root's nginx switches user; keep the current one
            import grp
            import pwd
            user = "user %s %s;\n" % (pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name)

        def cmd(port):
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(user=user, workers=o.workers, prefix=prefix, port=port))
            return [nginx, "-p", prefix + "/", "-c", conf, "-e", os.path.join(prefix, "error.log")]
        return Server(peer, cmd, self.workdir)

    def measure(self, peer, srv):
        o = self.o
        check_http(srv.port)
        cmd = [self.wrk, "-t", str(o.wrk_threads), "-c", str(o.connections), "-d", "%gs" % o.wrk_seconds,
               "--latency", "http://127.0.0.1:%d/" % srv.port]
        out = run_client(cmd, o.wrk_seconds + 60)
        rate, p50, p99, errors = parse_wrk(out)
        raw = {"requests_per_sec": rate, "p50_ns": p50, "p99_ns": p99, "errors": errors}
        if errors:
            raise Failed("wrk: " + "; ".join(errors))
        return {"http_hello": fig(rate, p50, p99)}, raw


# ------------------------------------------------------------------ resp

def resp_roundtrip(sock, send, expect):
    sock.sendall(send)
    got = b""
    while len(got) < len(expect):
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    if got != expect:
        raise Failed("RESP check: sent %r, expected %r, got %r" % (send, expect, got[:60]))


def check_resp(port):
    """PING (inline), SET and GET before the load, or Failed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            resp_roundtrip(s, b"PING\r\n", b"+PONG\r\n")
            resp_roundtrip(s, b"*3\r\n$3\r\nSET\r\n$9\r\nweftbench\r\n$5\r\nhello\r\n", b"+OK\r\n")
            resp_roundtrip(s, b"*2\r\n$3\r\nGET\r\n$9\r\nweftbench\r\n", b"$5\r\nhello\r\n")
    except OSError as e:
        raise Failed("RESP check: %s" % e)


def parse_redis_csv(out):
    """{'PING_INLINE': (rps, p50_ns, p99_ns), ...} from redis-benchmark --csv."""
    res = {}
    header = None
    for line in out.splitlines():
        cells = [c.strip().strip('"') for c in line.split('","')]
        if not cells or len(cells) < 2:
            continue
        if cells[0] == "test":
            header = cells
            continue
        row = dict(zip(header or ["test", "rps"], cells))
        try:
            rps = float(row["rps"])
        except (KeyError, ValueError):
            continue
        ms = lambda k: round(float(row[k]) * 1e6) if row.get(k) not in (None, "") else None
        res[row["test"].upper()] = (rps, ms("p50_latency_ms"), ms("p99_latency_ms"))
    return res


class Resp:
    name = "resp"

    def __init__(self, o, workdir):
        self.o = o
        self.workdir = workdir
        self.bench = None
        self.requests = {}  # (peer, pipeline) -> -n, calibrated on the first run

    def prepare(self):
        self.bench = need_tool("redis-benchmark", "redis-tools")

    def server(self, peer):
        if peer == "weft":
            return Server(peer, weft_server_cmd(self.name, self.o), self.workdir)
        redis = need_tool("redis-server", "redis-server")
        data = os.path.join(self.workdir, "redis")
        os.makedirs(data, exist_ok=True)
        return Server(peer, lambda port: [
            redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--dir", data, "--logfile", "", "--loglevel", "warning"], self.workdir)

    def _bench(self, port, n, pipeline):
        cmd = [self.bench, "-h", "127.0.0.1", "-p", str(port), "-t", "ping_inline,set,get",
               "-c", str(self.o.redis_clients), "-n", str(n), "--csv"]
        if pipeline > 1:
            cmd += ["-P", str(pipeline)]
        got = parse_redis_csv(run_client(cmd, 600))
        missing = [t for t in RESP_TESTS if t not in got]
        if missing:
            raise Failed("redis-benchmark printed no result for %s" % ",".join(missing))
        return got

    def measure(self, peer, srv):
        o = self.o
        check_resp(srv.port)
        figs, raw = {}, {}
        for pipeline in (1, o.pipeline):
            key = (peer, pipeline)
            if key not in self.requests:
                # redis-benchmark counts requests, not time: size -n so each
                # test takes about --seconds at this server's rate (a short
                # calibration run, also the warm-up, on the first repetition).
                n0 = 2000 * pipeline if o.tiny else 20000 * pipeline
                cal = self._bench(srv.port, n0, pipeline)
                slowest = min(v[0] for v in cal.values())
                self.requests[key] = n0 if o.tiny else max(n0, int(slowest * o.seconds))
            got = self._bench(srv.port, self.requests[key], pipeline)
            for t in RESP_TESTS:
                rps, p50, p99 = got[t]
                figs[t.lower() + ("" if pipeline == 1 else " -P%d" % pipeline)] = fig(rps, p50, p99)
            raw["P%d" % pipeline] = {"requests": self.requests[key], "tests": got}
        return figs, raw


# ------------------------------------------------------------------ file_read

GIB = 1 << 30
MIB = 1 << 20


def o_direct_ok(path):
    """True if O_DIRECT reads of 4 KiB work on path's filesystem."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError:
        return False
    try:
        buf = mmap.mmap(-1, 4096)  # page-aligned
        return os.preadv(fd, [buf], 0) == 4096
    except OSError:
        return False
    finally:
        os.close(fd)


def make_data_file(path, size):
    """Writes size bytes of incompressible, non-sparse data (once)."""
    try:
        st = os.stat(path)
        if st.st_size == size and st.st_blocks * 512 >= size:
            return False
    except OSError:
        pass
    need = size + 64 * MIB
    free = shutil.disk_usage(os.path.dirname(path)).free
    if free < need:
        raise Skip("file_read needs %d MiB free in %s for its data file, has %d MiB"
                   % (need // MIB, os.path.dirname(path), free // MIB))
    shown = os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path
    log("   creating %s (%d MiB, once)" % (shown, size // MIB))
    block = bytearray(os.urandom(MIB))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        for i in range(size // MIB):
            block[0:8] = i.to_bytes(8, "little")  # every MiB differs
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return True


class FileRead:
    name = "file_read"

    def __init__(self, o, workdir):
        self.o = o
        self.workdir = workdir
        self.path = None
        self.direct = True
        self.note = ""

    def prepare(self):
        o = self.o
        if o.tiny:
            size, d = 16 * MIB, self.workdir  # removed with the work dir
        else:
            size, d = o.file_mib * MIB, o.data_dir
        os.makedirs(d, exist_ok=True)
        self.path = os.path.join(d, "file_read-%dMiB.dat" % (size // MIB))
        make_data_file(self.path, size)
        self.direct = o_direct_ok(self.path)
        if not self.direct:
            self.note = "no O_DIRECT on this filesystem: buffered reads (from the page cache)"
            log("   file_read: " + self.note)
        self.size = size

    def server(self, peer):
        return None  # no server: each side reports its own figures

    def measure(self, peer, srv):
        o = self.o
        if peer == "weft":
            exe = need_exe(WEFT_PROGRAMS["file_read"], "%s not built (bench/weft_file_read.cpp)"
                           % os.path.relpath(WEFT_PROGRAMS["file_read"], ROOT))
            cmd = [exe, "--file", self.path, "--workers", str(o.workers), "--depth", str(o.depth),
                   "--seconds", str(o.seconds), "--direct", "1" if self.direct else "0",
                   "--block-size", "4096"] + list(getattr(o, "weft_knob_args", []))
            d = one_json(run_client(cmd, o.seconds + 60), "weft_file_read")
            if "skipped" in d:
                raise Skip(d["skipped"])
            if bool(d.get("direct", self.direct)) != self.direct:
                raise Failed("weft_file_read ran with direct=%s, fio with %s" % (d.get("direct"), self.direct))
            return {"file_read": fig(d["iops"], d.get("p50_ns"), d.get("p99_ns"))}, d
        fio = need_tool("fio", "fio")
        cmd = [fio, "--name=file_read", "--filename=" + self.path, "--ioengine=io_uring", "--rw=randread",
               "--bs=4k", "--iodepth=%d" % o.depth, "--numjobs=%d" % o.workers, "--thread",
               "--direct=%d" % (1 if self.direct else 0), "--time_based", "--runtime=%gs" % o.seconds,
               "--size=%d" % self.size, "--norandommap", "--randrepeat=0", "--group_reporting",
               "--output-format=json"]
        out = run_client(cmd, o.seconds + 120)
        try:
            j = json.loads(out[out.index("{"):])
            rd = j["jobs"][0]["read"]
            pct = rd["clat_ns"]["percentile"]
            iops = float(rd["iops"])
            p50, p99 = float(pct["50.000000"]), float(pct["99.000000"])
        except (ValueError, KeyError, IndexError) as e:
            raise Failed("fio: cannot read its JSON: %s" % e)
        if j["jobs"][0].get("error"):
            raise Failed("fio: job error %s" % j["jobs"][0]["error"])
        raw = {"iops": iops, "p50_ns": p50, "p99_ns": p99, "direct": self.direct,
               "fio_version": j.get("fio version")}
        return {"file_read": fig(iops, p50, p99)}, raw


CLASSES = {"tcp_echo": TcpEcho, "http_hello": HttpHello, "resp": Resp, "file_read": FileRead}


# ------------------------------------------------------------------ statistics and tables

def _summary(vals):
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def _num(x):
    if x is None:
        return "-"
    if abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    return "%.2f" % x


def cpu_summary(results):
    """One line: each side's median CPU (in cores) while measuring, per peer."""
    parts = []
    for peer, res in results.items():
        ok = res.get("ok", [])
        server = _summary([c for c in (cpu_cores(r.get("cpu"), "server_cpu_s") for r in ok) if c is not None])
        client = _summary([c for c in (cpu_cores(r.get("cpu"), "client_cpu_s") for r in ok) if c is not None])
        if not client:
            continue
        if server:
            parts.append("%s: server %.2f, client %.2f" % (peer, server["median"], client["median"]))
        else:  # file_read: no server, the program that reads is the "client"
            parts.append("%s: %.2f" % (peer, client["median"]))
    if not parts:
        return ""
    online = len(os.sched_getaffinity(0))
    return ("CPU while measuring, in cores (CPU s / wall s, median over the runs; %d online, shared by "
            "every process): %s" % (online, "; ".join(parts)))


def evaluate(workload, results, o, md_table, note=""):
    unit = UNIT[workload]
    rows, checks, ratios = [], [], []
    targets = dict(TARGETS.get(workload, []))
    weft_ok = results.get("weft", {}).get("ok", [])
    for f in figures(workload, o):
        stats = {}
        for peer, res in results.items():
            runs = [r["figures"][f] for r in res["ok"] if f in r.get("figures", {})]
            stats[peer] = (_summary([x["rate"] for x in runs]),
                           _summary([x["p50_ns"] for x in runs if x.get("p50_ns") is not None]),
                           _summary([x["p99_ns"] for x in runs if x.get("p99_ns") is not None]))
        ws = stats.get("weft", (None,))[0]
        for peer, res in results.items():
            s, p50, p99 = stats[peer]
            status = ""
            if res.get("skipped"):
                status = "skipped: " + res["skipped"]
            elif res["failed"]:
                status = "FAILED %d/%d: %s" % (len(res["failed"]), len(res["failed"]) + len(res["ok"]),
                                               res["failed"][-1]["failed"])
            ratio = None
            if peer != "weft" and s and ws and s["median"] > 0:
                ratio = ws["median"] / s["median"]
            target, verdict = "", ""
            if peer in targets:
                limit = targets[peer]
                target = ">= %.2gx" % limit
                verdict = "n/a" if ratio is None else ("PASS" if ratio >= limit else "FAIL")
                checks.append({"what": "weft/%s %s %s %s" % (peer, f, unit, target), "ratio": ratio,
                               "limit": limit, "higher_is_better": True, "verdict": verdict})
            if ratio is not None:
                # The chart plots cost ratios (lower is better) like every other
                # workload: peer rate / weft rate, and the limit inverted.
                ratios.append({"workload": f if f != workload else workload, "peer": peer,
                               "ratio": 1.0 / ratio, "limit": (1.0 / targets[peer]) if peer in targets else None,
                               "throughput_ratio": ratio})
            rows.append([f, peer, _num(s["median"]) if s else "-",
                         ("%s-%s" % (_num(s["min"]), _num(s["max"]))) if s else "-",
                         _num(p50["median"] / 1e3) if p50 else "-", _num(p99["median"] / 1e3) if p99 else "-",
                         ("%.3f" % ratio) if ratio is not None else "-", target, verdict, status])
    text = ["### %s  (%s, higher is better; ratio = weft median / peer median; p50/p99 latency in us, "
            "medians)" % (workload, unit), "",
            md_table(["test", "peer", "median", "min-max", "p50 us", "p99 us", "weft/peer", "target", "",
                      "notes"], rows)]
    extras = [x for x in [note] if x]
    cpu_line = cpu_summary(results)
    if cpu_line:
        extras.append(cpu_line)
    if weft_ok and any(r.get("raw", {}).get("metrics") for r in weft_ok):
        extras.append("- weft metrics (first run): " + json.dumps(weft_ok[0]["raw"]["metrics"]))
    if extras:
        text += [""] + ["- " + x if not x.startswith("- ") else x for x in extras]
    return {"rows": rows, "checks": checks, "ratios": ratios, "text": "\n".join(text), "unit": unit,
            "key": "rate", "higher_is_better": True}


# ------------------------------------------------------------------ the suite

def describe(workload, o):
    if workload == "tcp_echo":
        return "C=%d connections, %d-byte ping-pong, %gs (+%gs warm-up), client threads %d" % (
            o.connections, o.msg_size, o.seconds, o.warmup, o.client_threads)
    if workload == "http_hello":
        return "wrk -t%d -c%d -d%gs --latency, GET / (13-byte body)" % (o.wrk_threads, o.connections, o.wrk_seconds)
    if workload == "resp":
        return "redis-benchmark -t ping_inline,set,get -c %d, without and with -P %d, about %gs per test" % (
            o.redis_clients, o.pipeline, o.seconds)
    return "4 KiB random reads, iodepth %d per worker, %d worker(s), %gs, %s" % (
        o.depth, o.workers, o.seconds, "tiny file" if o.tiny else "%d MiB file" % o.file_mib)


def run_workload(workload, peers, o, md_table):
    workdir = tempfile.mkdtemp(prefix="weft-bench-%s-" % workload)
    try:
        w = CLASSES[workload](o, workdir)
        results = {"weft": {"ok": [], "failed": []}}
        for p in peers:
            results[p] = {"ok": [], "failed": []}
        log("== %s: %s" % (workload, describe(workload, o)))
        try:
            w.prepare()
        except Skip as e:
            log("skipped: %s: %s" % (workload, e))
            return {"skipped": str(e), "results": results}
        t0 = time.time()
        for rep in range(o.reps):
            for peer in ["weft"] + peers:
                res = results[peer]
                if res.get("skipped"):
                    continue
                srv = None
                try:
                    srv = w.server(peer)
                    if srv is not None:
                        srv.start()
                    meter = CpuMeter(srv)
                    meter.start()
                    figs, raw = w.measure(peer, srv)
                    res["ok"].append({"peer": peer, "workload": workload, "rep": rep + 1, "figures": figs,
                                      "raw": raw, "cpu": meter.stop()})
                except Skip as e:
                    res["skipped"] = str(e)
                    log("   skipped: %s %s: %s" % (workload, peer, e))
                except Failed as e:
                    res["failed"].append({"failed": str(e), "rep": rep + 1})
                    log("   rep %d %-6s FAILED: %s" % (rep + 1, peer, e))
                finally:
                    if srv is not None:
                        srv.stop()
        if results["weft"].get("skipped") and not any(r["ok"] or r["failed"] for r in results.values()):
            why = results["weft"]["skipped"]
            log("skipped: %s: %s" % (workload, why))
            log()
            return {"skipped": why, "results": results}
        note = getattr(w, "note", "")
        ev = evaluate(workload, results, o, md_table, note)
        ev["results"] = results
        ev["seconds"] = time.time() - t0
        ev["parameters"] = describe(workload, o)
        log(ev["text"])
        log()
        return ev
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_suite(o, workloads, peers_wanted, md_table):
    """Runs the selected server workloads; returns {workload: ev} like bench/run's suite."""
    # A SIGTERM to the runner must still stop the servers: make it unwind
    # through the `finally`s like Ctrl-C does.
    def on_term(signum, frame):
        raise KeyboardInterrupt("SIGTERM")
    old = signal.signal(signal.SIGTERM, on_term)
    out = {}
    try:
        for workload, peers in WORKLOADS:
            if workload not in workloads:
                continue
            peers = [p for p in peers if p in peers_wanted]
            out[workload] = run_workload(workload, peers, o, md_table)
    finally:
        signal.signal(signal.SIGTERM, old)
    return out


def add_arguments(ap):
    g = ap.add_argument_group("server workloads (tcp_echo, http_hello, resp, file_read)")
    g.add_argument("--seconds", type=float, default=None,
                   help="measured seconds per run (default 5; 0.5 with --tiny)")
    g.add_argument("--warmup", type=float, default=None, help="tcp_echo warm-up seconds (default 0.5; 0.1 tiny)")
    g.add_argument("--connections", type=int, default=64, help="tcp_echo and wrk connections (default 64)")
    g.add_argument("--msg-size", type=int, default=64, help="tcp_echo message bytes (default 64)")
    g.add_argument("--client-threads", type=int, default=2, help="tcp_echo client threads (default 2)")
    g.add_argument("--wrk-threads", type=int, default=2, help="wrk -t (default 2)")
    g.add_argument("--redis-clients", type=int, default=50, help="redis-benchmark -c (default 50)")
    g.add_argument("--pipeline", type=int, default=16, help="redis-benchmark -P of the pipelined tests (default 16)")
    g.add_argument("--depth", type=int, default=32, help="file_read reads in flight per worker (default 32)")
    g.add_argument("--file-mib", type=int, default=1024, help="file_read file size in MiB (default 1024)")
    g.add_argument("--data-dir", default=RESULTS,
                   help="where file_read's data file is created once (default bench/results)")


def finish_arguments(o):
    if o.seconds is None:
        o.seconds = 0.5 if o.tiny else 5.0
    if o.warmup is None:
        o.warmup = 0.1 if o.tiny else 0.5
    # wrk takes whole seconds.
    o.wrk_seconds = max(1, int(round(o.seconds)))
