// Shared by the C++ peers (tbb, uring): the common command line and the
// one-line JSON output. See bench/peers/README.md for the contract.
#pragma once

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace peer {

struct Args {
    std::string workload;
    int workers = 2;
    int64_t n = -1;  // -1: the workload's default
    int64_t t = 1000;
    int64_t y = 1000;
    int64_t p = -1;  // -1: the workload's default
    int64_t r = 100;
    int64_t depth = 32;
    uint64_t seed = 42;
    int64_t ops = 1000000;
};

[[noreturn]] inline void usage(const char* prog, const std::string& msg) {
    std::fprintf(stderr, "%s: %s\n", prog, msg.c_str());
    std::fprintf(stderr,
                 "usage: %s --workload NAME [--workers 2] [--n N] [--t T] [--y Y] [--p P] "
                 "[--r R] [--depth D] [--seed S] [--ops OPS]\n",
                 prog);
    std::exit(2);
}

inline Args parse_args(const char* prog, int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; i += 2) {
        std::string key = argv[i];
        if (i + 1 >= argc) usage(prog, "missing value for " + key);
        const char* val = argv[i + 1];
        auto num = [&]() -> uint64_t {
            char* end = nullptr;
            errno = 0;
            unsigned long long v = std::strtoull(val, &end, 10);
            if (errno != 0 || end == val || *end != '\0' || val[0] == '-')
                usage(prog, "bad number for " + key + ": " + val);
            return v;
        };
        if (key == "--workload")
            a.workload = val;
        else if (key == "--workers")
            a.workers = static_cast<int>(num());
        else if (key == "--n")
            a.n = static_cast<int64_t>(num());
        else if (key == "--t")
            a.t = static_cast<int64_t>(num());
        else if (key == "--y")
            a.y = static_cast<int64_t>(num());
        else if (key == "--p")
            a.p = static_cast<int64_t>(num());
        else if (key == "--r")
            a.r = static_cast<int64_t>(num());
        else if (key == "--depth")
            a.depth = static_cast<int64_t>(num());
        else if (key == "--seed")
            a.seed = num();
        else if (key == "--ops")
            a.ops = static_cast<int64_t>(num());
        else
            usage(prog, "unknown option " + key);
    }
    if (a.workload.empty()) usage(prog, "--workload is required");
    if (a.workers < 1) usage(prog, "--workers must be >= 1");
    return a;
}

inline std::string quote(const std::string& s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        if (c == '"')
            o += "\\\"";
        else if (c == '\\')
            o += "\\\\";
        else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            o += buf;
        } else
            o += static_cast<char>(c);
    }
    return o + "\"";
}

class Json {
  public:
    Json(const std::string& peer, const std::string& workload) {
        str("peer", peer);
        str("workload", workload);
    }
    void str(const std::string& k, const std::string& v) { add(k, quote(v)); }
    void integer(const std::string& k, int64_t v) { add(k, std::to_string(v)); }
    void real(const std::string& k, double v) {
        if (!std::isfinite(v)) return add(k, "null");
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.3f", v);
        add(k, buf);
    }
    void timing(int64_t ns_total, int64_t ops) {
        integer("ops", ops);
        integer("ns_total", ns_total);
        real("ns_per_op", static_cast<double>(ns_total) / static_cast<double>(ops > 0 ? ops : 1));
    }
    void print() const {
        std::string line = "{";
        for (size_t i = 0; i < parts_.size(); ++i) {
            if (i) line += ",";
            line += parts_[i];
        }
        line += "}\n";
        std::fputs(line.c_str(), stdout);
        std::fflush(stdout);
    }

  private:
    void add(const std::string& k, const std::string& raw) {
        parts_.push_back(quote(k) + ":" + raw);
    }
    std::vector<std::string> parts_;
};

inline int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace peer
