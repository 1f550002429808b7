// examples/resp_server.cpp - a server speaking the Redis protocol (RESP2) for
// PING, ECHO, SET, GET, DEL and INCR, over one in-memory map shared by every
// worker.
//
//   build/release/examples/resp_server --port 6379 --workers 2
//   redis-cli -p 6379 set greeting hello
//   redis-benchmark -p 6379 -t ping_inline,set,get -c 50 -P 16
//
// Each connection is a task that reads what arrived, parses every complete
// command in it (arrays of bulk strings, or the inline form "PING\r\n") in
// place, without copying arguments, and sends the replies of the batch
// together: a pipelined burst costs one read and one send. The map is split into 64 shards, each a
// mutex and an absl::flat_hash_map, so tasks on different workers rarely wait on one another.
// CONFIG GET answers an empty list (redis-benchmark asks for it); any other command gets "-ERR
// unknown command". Protocol errors get an error reply and close the connection, as redis-server
// does.
#include <absl/container/flat_hash_map.h>
#include <absl/hash/hash.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <weft/io/errors.hpp>
#include <weft/io/server.hpp>
#include <weft/weft.hpp>

#include "server_main.hpp"

namespace {

// Debian's Abseil has its own string_view type: look keys up through it.
absl::string_view av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

class Store {
 public:
  /// Appends GET's reply for `k` to `out` (a bulk string, or the null bulk).
  void get_into(std::string_view k, std::string& out) {
    Shard& s = shard(k);
    std::lock_guard g(s.m);
    auto it = s.map.find(av(k));
    if (it == s.map.end()) {
      out += "$-1\r\n";
    } else {
      append_bulk(out, it->second);
    }
  }
  void set(std::string_view k, std::string_view v) {
    Shard& s = shard(k);
    std::lock_guard g(s.m);
    s.map.insert_or_assign(std::string(k), std::string(v));
  }
  bool del(std::string_view k) {
    Shard& s = shard(k);
    std::lock_guard g(s.m);
    auto it = s.map.find(av(k));
    if (it == s.map.end()) return false;
    s.map.erase(it);
    return true;
  }
  /// INCR: the new value, or nothing if the value is not a 64-bit integer
  /// or would overflow.
  std::optional<long long> incr(std::string_view k) {
    Shard& s = shard(k);
    std::lock_guard g(s.m);
    std::string& v = s.map[std::string(k)];
    long long n = 0;
    if (!v.empty()) {
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
    }
    if (n == std::numeric_limits<long long>::max()) return std::nullopt;
    ++n;
    v = std::to_string(n);
    return n;
  }

  static void append_bulk(std::string& out, std::string_view s) {
    out += '$';
    out += std::to_string(s.size());
    out += "\r\n";
    out += s;
    out += "\r\n";
  }

 private:
  struct alignas(64) Shard {
    std::mutex m;
    absl::flat_hash_map<std::string, std::string> map;
  };
  Shard& shard(std::string_view k) {
    return shards_[absl::Hash<absl::string_view>{}(av(k)) % kShards];
  }
  static constexpr std::size_t kShards = 64;
  std::array<Shard, kShards> shards_;
};

Store store;  // shared by every connection on every worker

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) != b[i]) return false;
  return true;
}

void arity_error(std::string& out, const char* cmd) {
  out += "-ERR wrong number of arguments for '";
  out += cmd;
  out += "' command\r\n";
}

// Runs one command and appends its reply to `out`.
void execute(const std::vector<std::string_view>& argv, std::string& out) {
  const std::string_view cmd = argv[0];
  const std::size_t n = argv.size();
  if (iequals(cmd, "PING")) {
    if (n == 1) {
      out += "+PONG\r\n";
    } else if (n == 2) {
      Store::append_bulk(out, argv[1]);
    } else {
      arity_error(out, "ping");
    }
  } else if (iequals(cmd, "ECHO")) {
    if (n != 2) {
      arity_error(out, "echo");
    } else {
      Store::append_bulk(out, argv[1]);
    }
  } else if (iequals(cmd, "SET")) {
    if (n != 3) {
      out += "-ERR syntax error\r\n";
    } else {
      store.set(argv[1], argv[2]);
      out += "+OK\r\n";
    }
  } else if (iequals(cmd, "GET")) {
    if (n != 2) {
      arity_error(out, "get");
    } else {
      store.get_into(argv[1], out);
    }
  } else if (iequals(cmd, "DEL")) {
    if (n < 2) {
      arity_error(out, "del");
    } else {
      long long removed = 0;
      for (std::size_t i = 1; i < n; ++i) removed += store.del(argv[i]) ? 1 : 0;
      out += ':' + std::to_string(removed) + "\r\n";
    }
  } else if (iequals(cmd, "INCR")) {
    if (n != 2) {
      arity_error(out, "incr");
    } else if (std::optional<long long> v = store.incr(argv[1])) {
      out += ':' + std::to_string(*v) + "\r\n";
    } else {
      out += "-ERR value is not an integer or out of range\r\n";
    }
  } else if (iequals(cmd, "CONFIG") && n == 3 && iequals(argv[1], "GET")) {
    out += "*0\r\n";
  } else {
    out += "-ERR unknown command '";
    out += cmd.substr(0, 128);
    out += "'\r\n";
  }
}

// Parses a decimal integer that fills `s`.
std::optional<long long> to_int(std::string_view s) {
  long long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

constexpr long long kMaxArgs = 1024 * 1024;
constexpr long long kMaxBulk = 512LL * 1024 * 1024;
constexpr std::size_t kMaxInline = 64 * 1024;

enum class Parsed { kCommand, kNeedMore, kError };

// Parses one command from in[pos...]: on kCommand `argv` holds views into
// `in` and `pos` is past the command; on kError `error` is the reply.
Parsed parse_command(std::string_view in, std::size_t& pos, std::vector<std::string_view>& argv,
                     const char*& error) {
  argv.clear();
  std::size_t eol = in.find("\r\n", pos);
  if (eol == std::string_view::npos) {
    if (in.size() - pos > kMaxInline) {
      error = "-ERR Protocol error: too big inline request\r\n";
      return Parsed::kError;
    }
    return Parsed::kNeedMore;
  }
  if (in[pos] != '*') {
    // The inline form: words separated by spaces.
    std::string_view rest = in.substr(pos, eol - pos);
    while (!rest.empty()) {
      std::size_t sp = rest.find(' ');
      std::string_view word = rest.substr(0, sp);
      if (!word.empty()) argv.push_back(word);
      if (sp == std::string_view::npos) break;
      rest.remove_prefix(sp + 1);
    }
    pos = eol + 2;
    return Parsed::kCommand;
  }
  std::optional<long long> count = to_int(in.substr(pos + 1, eol - pos - 1));
  if (!count || *count > kMaxArgs) {
    error = "-ERR Protocol error: invalid multibulk length\r\n";
    return Parsed::kError;
  }
  std::size_t p = eol + 2;
  for (long long i = 0; i < *count; ++i) {
    if (p >= in.size()) return Parsed::kNeedMore;
    if (in[p] != '$') {
      error = "-ERR Protocol error: expected '$'\r\n";
      return Parsed::kError;
    }
    std::size_t e = in.find("\r\n", p);
    if (e == std::string_view::npos) return Parsed::kNeedMore;
    std::optional<long long> len = to_int(in.substr(p + 1, e - p - 1));
    if (!len || *len < 0 || *len > kMaxBulk) {
      error = "-ERR Protocol error: invalid bulk length\r\n";
      return Parsed::kError;
    }
    const std::size_t start = e + 2, n = static_cast<std::size_t>(*len);
    if (in.size() < start + n + 2) return Parsed::kNeedMore;
    if (in[start + n] != '\r' || in[start + n + 1] != '\n') {
      error = "-ERR Protocol error: expected '\\r\\n'\r\n";
      return Parsed::kError;
    }
    argv.push_back(in.substr(start, n));
    p = start + n + 2;
  }
  pos = p;
  return Parsed::kCommand;
}

// One connection: read what arrived, answer every complete command in it
// (a pipelined batch), send the replies together, repeat.
weft::Task<void> resp(weft::io::StreamReader reader, weft::io::StreamWriter writer) {
  std::string in, out;
  std::size_t pos = 0;
  std::vector<std::string_view> argv;
  try {
    for (;;) {
      const char* error = nullptr;
      for (;;) {
        Parsed r = parse_command(in, pos, argv, error);
        if (r != Parsed::kCommand) break;
        if (!argv.empty()) execute(argv, out);
      }
      if (error != nullptr) {
        out += error;  // redis-server answers, then closes the connection
        writer.write(out);
        break;
      }
      if (!out.empty()) {
        writer.write(out);
        out.clear();
        co_await writer.drain();
      }
      in.erase(0, pos);
      pos = 0;
      std::string chunk = co_await reader.read(64 * 1024);
      if (chunk.empty()) break;  // the client closed the connection
      if (in.empty()) {
        in.swap(chunk);
      } else {
        in += chunk;
      }
    }
  } catch (const weft::io::ConnectionResetError&) {
    // The client reset the connection (redis-benchmark may at its end):
    // that ends this connection like EOF does, not worth a report.
  }
  writer.close();
}

}  // namespace

int main(int argc, char** argv) { return server_main(argc, argv, "resp_server", resp); }
