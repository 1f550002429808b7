#!/usr/bin/env bash
# Installs the toolchains for weft's benchmark peers (Debian packages only)
# and builds every peer into bench/peers/bin/:
#   weft-peer-tokio  weft-peer-go  weft-peer-tbb  weft-peer-uring
#   weft-peer-tokio-echo  weft-peer-go-echo   (tcp_echo servers)
# and installs the server-workload peers and clients from Debian:
#   nginx-light (http_hello), redis-server + redis-tools (resp, with
#   redis-benchmark), wrk (http_hello's client), fio (file_read).
# The packages' own services are never started: while apt-get runs, a
# temporary /usr/sbin/policy-rc.d (exit 101) is in place unless one exists
# already, so no nginx on port 80 or redis on 6379 is left behind; the
# runner starts its own instances on loopback ports it picked.
#
# - apt-get installs only packages that are missing (sudo -n when not root;
#   never reads stdin). apt-get update runs once, only if something is missing.
# - A peer is rebuilt only when one of its sources is newer than its binary
#   (or with --force / FORCE=1).
# - A peer that cannot be built prints "skipped: <peer>: <why>"; the script
#   goes on and exits 0.
#
# Usage: bench/peers/install.sh [--force] [--no-apt] [--no-tools|--tools-only]
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$here/bin"
force="${FORCE:-0}"
use_apt=1
tools=1
peers=1
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        --no-apt) use_apt=0 ;;
        --no-tools) tools=0 ;;
        --tools-only) peers=0 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done
mkdir -p "$bin"

log() { echo "install.sh: $*"; }
skip() { echo "skipped: $1: $2"; }

# ------------------------------------------------------------------ packages

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo -n)
else
    as_root=(none)
fi
apt_updated=0

pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# ensure_pkgs PKG... : installs the missing ones; non-zero if any is still missing.
ensure_pkgs() {
    local missing=() p
    for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$use_apt" -eq 0 ]; then
        log "missing packages (--no-apt): ${missing[*]}"
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "missing packages and no apt-get: ${missing[*]}"
        return 1
    fi
    if [ "${as_root[0]:-}" = none ]; then
        log "missing packages, not root and no sudo: ${missing[*]}"
        return 1
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$apt_updated" -eq 0 ]; then
        "${as_root[@]}" apt-get update -q </dev/null >/dev/null 2>&1 || log "apt-get update failed"
        apt_updated=1
    fi
    # Server packages (nginx, redis) start their service from postinst: keep
    # them from doing so with Debian's policy-rc.d mechanism, only for the
    # duration of this install and only if the system has no policy of its own.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [ ! -e "$policy" ]; then
        if printf '#!/bin/sh\n# weft bench/peers/install.sh: no service starts during this install\nexit 101\n' \
                | "${as_root[@]}" tee "$policy" >/dev/null 2>&1 && "${as_root[@]}" chmod 0755 "$policy"; then
            own_policy=1
            trap '"${as_root[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
        fi
    fi
    "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >/dev/null 2>&1 \
        || log "apt-get install failed for: ${missing[*]}"
    if [ "$own_policy" -eq 1 ]; then
        "${as_root[@]}" rm -f "$policy"
        trap - EXIT
    fi
    for p in "${missing[@]}"; do pkg_installed "$p" || return 1; done
    return 0
}

# up_to_date BINARY SOURCE... : true if BINARY exists and no SOURCE is newer.
up_to_date() {
    local out="$1" s
    shift
    [ "$force" = 1 ] && return 1
    [ -x "$out" ] || return 1
    for s in "$@"; do
        [ -e "$s" ] || continue
        [ "$s" -nt "$out" ] && return 1
    done
    return 0
}

# ------------------------------------------------------------------ peers

build_tokio() {
    local out="$bin/weft-peer-tokio" echo_out="$bin/weft-peer-tokio-echo" dir="$here/tokio"
    local srcs=("$dir/Cargo.toml" "$dir/Cargo.lock" "$dir/.cargo/config.toml" "$dir"/src/*.rs "$dir"/src/bin/*.rs)
    if up_to_date "$out" "${srcs[@]}" && up_to_date "$echo_out" "${srcs[@]}"; then
        log "up to date: $out, $echo_out"; return
    fi
    rm -f "$out" "$echo_out" # never leave a stale binary for the runner to measure
    ensure_pkgs cargo rustc librust-tokio-dev \
        || { skip tokio "Debian packages cargo/rustc/librust-tokio-dev unavailable"; return; }
    local cargo=/usr/bin/cargo rustc=/usr/bin/rustc
    [ -x "$cargo" ] || { skip tokio "no $cargo"; return; }
    [ -x "$rustc" ] || { skip tokio "no $rustc"; return; }
    log "building tokio peer (cargo --offline against /usr/share/cargo/registry)"
    mkdir -p "$dir/target"
    local blog="$dir/target/build.log"
    # Debian's toolchain explicitly (not a rustup one on PATH), and a private
    # CARGO_HOME so no user-level cargo config changes the build.
    if ! (cd "$dir" && CARGO_HOME="$dir/target/cargo-home" RUSTC="$rustc" \
            "$cargo" build --release --offline --locked -q) >"$blog" 2>&1; then
        # A Cargo.lock written by a different cargo/crate set: retry unlocked.
        if ! (cd "$dir" && CARGO_HOME="$dir/target/cargo-home" RUSTC="$rustc" \
                "$cargo" build --release --offline -q) >>"$blog" 2>&1; then
            skip tokio "cargo build failed: $(tail -n 3 "$blog" | tr '\n' ' ')"
            return
        fi
    fi
    install -m 0755 "$dir/target/release/weft-peer-tokio" "$out" && log "built: $out"
    install -m 0755 "$dir/target/release/weft-peer-tokio-echo" "$echo_out" && log "built: $echo_out"
}

build_go() {
    local out="$bin/weft-peer-go" echo_out="$bin/weft-peer-go-echo" dir="$here/go"
    if up_to_date "$out" "$dir/go.mod" "$dir"/*.go && up_to_date "$echo_out" "$dir/go.mod" "$dir"/echo/*.go; then
        log "up to date: $out, $echo_out"; return
    fi
    rm -f "$out" "$echo_out" # never leave a stale binary for the runner to measure
    ensure_pkgs golang-go || { skip go "Debian package golang-go unavailable"; return; }
    local go=/usr/bin/go
    [ -x "$go" ] || go="$(command -v go || true)"
    [ -n "$go" ] && [ -x "$go" ] || { skip go "no go binary"; return; }
    log "building go peer ($("$go" version 2>/dev/null))"
    mkdir -p "$dir/bin"
    local msg
    if ! msg=$(cd "$dir" && GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$dir/bin/.gocache" \
            "$go" build -o "$dir/bin/weft-peer-go" . 2>&1); then
        skip go "go build failed: $(echo "$msg" | tail -n 3 | tr '\n' ' ')"
        return
    fi
    install -m 0755 "$dir/bin/weft-peer-go" "$out" && log "built: $out"
    # The tcp_echo server: its own main package in echo/.
    if ! msg=$(cd "$dir" && GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$dir/bin/.gocache" \
            "$go" build -o "$dir/bin/weft-peer-go-echo" ./echo 2>&1); then
        skip go-echo "go build failed: $(echo "$msg" | tail -n 3 | tr '\n' ' ')"
        return
    fi
    install -m 0755 "$dir/bin/weft-peer-go-echo" "$echo_out" && log "built: $echo_out"
}

build_tbb() {
    local out="$bin/weft-peer-tbb" src="$here/tbb/tbb_peer.cpp"
    if up_to_date "$out" "$src" "$here/common/peer.hpp" "$here/install.sh"; then
        log "up to date: $out"; return
    fi
    rm -f "$out" # never leave a stale binary for the runner to measure
    ensure_pkgs g++ libtbb-dev || { skip tbb "Debian packages g++/libtbb-dev unavailable"; return; }
    log "building tbb peer"
    local msg
    # -falign-loops=64 as for weft_bench (bench/CMakeLists.txt): cpu_fanout's
    # chunk sum is a 14-byte loop whose speed depends on its alignment.
    if ! msg=$(g++ -O2 -falign-loops=64 -std=c++20 -o "$out.tmp" "$src" -ltbb -pthread 2>&1); then
        rm -f "$out.tmp"
        skip tbb "g++ failed: $(echo "$msg" | tail -n 3 | tr '\n' ' ')"
        return
    fi
    mv -f "$out.tmp" "$out" && log "built: $out"
}

build_uring() {
    local out="$bin/weft-peer-uring" src="$here/uring/nop.cpp"
    if up_to_date "$out" "$src" "$here/common/peer.hpp"; then
        log "up to date: $out"; return
    fi
    rm -f "$out" # never leave a stale binary for the runner to measure
    ensure_pkgs g++ pkg-config liburing-dev \
        || { skip uring "Debian packages g++/pkg-config/liburing-dev unavailable"; return; }
    pkg-config --exists liburing || { skip uring "pkg-config does not know liburing"; return; }
    log "building uring peer"
    local msg
    # shellcheck disable=SC2046
    if ! msg=$(g++ -O2 -std=c++20 $(pkg-config --cflags liburing) -o "$out.tmp" "$src" \
            $(pkg-config --libs liburing) -pthread 2>&1); then
        rm -f "$out.tmp"
        skip uring "g++ failed: $(echo "$msg" | tail -n 3 | tr '\n' ' ')"
        return
    fi
    mv -f "$out.tmp" "$out" && log "built: $out"
}

# ------------------------------------------------------------------ tools
# The server workloads' peers and clients: Debian's own binaries, used as
# they come. One line each, so the runner can show what is missing.
install_tools() {
    ensure_pkgs nginx-light && command -v nginx >/dev/null 2>&1 \
        && log "present: nginx ($(nginx -v 2>&1 | sed 's/.*version: //'))" \
        || skip nginx "Debian package nginx-light unavailable"
    ensure_pkgs redis-server redis-tools && command -v redis-server >/dev/null 2>&1 \
        && command -v redis-benchmark >/dev/null 2>&1 \
        && log "present: redis-server $(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/'), redis-benchmark" \
        || skip redis "Debian packages redis-server/redis-tools unavailable"
    ensure_pkgs wrk && command -v wrk >/dev/null 2>&1 \
        && log "present: wrk" || skip wrk "Debian package wrk unavailable"
    ensure_pkgs fio && command -v fio >/dev/null 2>&1 \
        && log "present: $(fio --version)" || skip fio "Debian package fio unavailable"
}

if [ "$peers" -eq 1 ]; then
    build_tokio
    build_go
    build_tbb
    build_uring
fi
[ "$tools" -eq 1 ] && install_tools
exit 0
