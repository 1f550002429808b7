// examples/resp_server.cpp - a server speaking the Redis protocol (RESP2) for
// PING, ECHO, SET, GET, DEL and INCR, over one in-memory map shared by every
// worker.
//
//   build/release/examples/resp_server --port 6379 --workers 2
//   redis-cli -p 6379 set greeting hello
//   redis-benchmark -p 6379 -t ping_inline,set,get -c 50 -P 16
//
// Each connection is a task that parses commands (arrays of bulk strings, or
// the inline form "PING\r\n") and writes one reply per command; pipelined
// commands are answered from the reader's buffer and the replies of a burst
// go out in one send. The map is split into 64 shards, each a mutex and an
// absl::flat_hash_map, so tasks on different workers rarely wait on one
// another. CONFIG GET answers an empty list (redis-benchmark asks for it);
// any other command gets "-ERR unknown command". Protocol errors get an
// error reply and close the connection, as redis-server does.
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
#include <weft/io/server.hpp>
#include <weft/weft.hpp>

#include "server_args.hpp"

namespace {

class Store {
 public:
  std::optional<std::string> get(const std::string& k) {
    Shard& s = shard(k);
    std::lock_guard g(s.m);
    auto it = s.map.find(k);
    if (it == s.map.end()) return std::nullopt;
    return it->second;
  }
  void set(std::string k, std::string v) {
    Shard& s = shard(k);
    std::lock_guard g(s.m);
    s.map.insert_or_assign(std::move(k), std::move(v));
  }
  bool del(const std::string& k) {
    Shard& s = shard(k);
    std::lock_guard g(s.m);
    return s.map.erase(k) > 0;
  }
  /// INCR: the new value, or nothing if the value is not a 64-bit integer
  /// or would overflow.
  std::optional<long long> incr(const std::string& k) {
    Shard& s = shard(k);
    std::lock_guard g(s.m);
    std::string& v = s.map[k];
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

 private:
  struct alignas(64) Shard {
    std::mutex m;
    absl::flat_hash_map<std::string, std::string> map;
  };
  Shard& shard(const std::string& k) { return shards_[absl::Hash<std::string>{}(k) % kShards]; }
  static constexpr std::size_t kShards = 64;
  std::array<Shard, kShards> shards_;
};

Store store;  // shared by every connection on every worker

void bulk(weft::io::StreamWriter& w, std::string_view s) {
  std::string r = "$" + std::to_string(s.size()) + "\r\n";
  r.append(s);
  r.append("\r\n");
  w.write(r);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) != b[i]) return false;
  return true;
}

void execute(const std::vector<std::string>& argv, weft::io::StreamWriter& w) {
  const std::string_view cmd = argv[0];
  const std::size_t n = argv.size();
  if (iequals(cmd, "PING")) {
    if (n == 1) {
      w.write("+PONG\r\n");
    } else if (n == 2) {
      bulk(w, argv[1]);
    } else {
      w.write("-ERR wrong number of arguments for 'ping' command\r\n");
    }
  } else if (iequals(cmd, "ECHO")) {
    if (n != 2) {
      w.write("-ERR wrong number of arguments for 'echo' command\r\n");
    } else {
      bulk(w, argv[1]);
    }
  } else if (iequals(cmd, "SET")) {
    if (n != 3) {
      w.write("-ERR syntax error\r\n");
    } else {
      store.set(argv[1], argv[2]);
      w.write("+OK\r\n");
    }
  } else if (iequals(cmd, "GET")) {
    if (n != 2) {
      w.write("-ERR wrong number of arguments for 'get' command\r\n");
    } else if (std::optional<std::string> v = store.get(argv[1])) {
      bulk(w, *v);
    } else {
      w.write("$-1\r\n");
    }
  } else if (iequals(cmd, "DEL")) {
    if (n < 2) {
      w.write("-ERR wrong number of arguments for 'del' command\r\n");
    } else {
      long long removed = 0;
      for (std::size_t i = 1; i < n; ++i) removed += store.del(argv[i]) ? 1 : 0;
      w.write(":" + std::to_string(removed) + "\r\n");
    }
  } else if (iequals(cmd, "INCR")) {
    if (n != 2) {
      w.write("-ERR wrong number of arguments for 'incr' command\r\n");
    } else if (std::optional<long long> v = store.incr(argv[1])) {
      w.write(":" + std::to_string(*v) + "\r\n");
    } else {
      w.write("-ERR value is not an integer or out of range\r\n");
    }
  } else if (iequals(cmd, "CONFIG") && n == 3 && iequals(argv[1], "GET")) {
    w.write("*0\r\n");
  } else {
    std::string e = "-ERR unknown command '";
    e.append(cmd.substr(0, 128));
    e.append("'\r\n");
    w.write(e);
  }
}

// Parses a decimal integer that fills `s` (no sign unless allowed).
std::optional<long long> to_int(std::string_view s) {
  long long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

constexpr long long kMaxArgs = 1024 * 1024;
constexpr long long kMaxBulk = 512LL * 1024 * 1024;

weft::Task<void> resp(weft::io::StreamReader reader, weft::io::StreamWriter writer) {
  std::vector<std::string> argv;
  try {
    for (;;) {
      std::string line = co_await reader.readuntil("\r\n");
      line.resize(line.size() - 2);
      argv.clear();
      if (!line.empty() && line[0] == '*') {
        std::optional<long long> count = to_int(std::string_view(line).substr(1));
        if (!count || *count > kMaxArgs) {
          writer.write("-ERR Protocol error: invalid multibulk length\r\n");
          break;
        }
        for (long long i = 0; i < *count; ++i) {
          std::string len_line = co_await reader.readuntil("\r\n");
          std::optional<long long> len;
          if (len_line[0] == '$')
            len = to_int(std::string_view(len_line).substr(1, len_line.size() - 3));
          if (!len || *len < 0 || *len > kMaxBulk) {
            writer.write("-ERR Protocol error: invalid bulk length\r\n");
            writer.close();
            co_return;
          }
          std::string arg = co_await reader.readexactly(*len + 2);
          if (arg[static_cast<std::size_t>(*len)] != '\r' || arg.back() != '\n') {
            writer.write("-ERR Protocol error: expected '\\r\\n'\r\n");
            writer.close();
            co_return;
          }
          arg.resize(static_cast<std::size_t>(*len));
          argv.push_back(std::move(arg));
        }
      } else {
        // The inline form: words separated by spaces.
        std::string_view rest = line;
        while (!rest.empty()) {
          std::size_t sp = rest.find(' ');
          std::string_view word = rest.substr(0, sp);
          if (!word.empty()) argv.emplace_back(word);
          if (sp == std::string_view::npos) break;
          rest.remove_prefix(sp + 1);
        }
      }
      if (argv.empty()) continue;
      execute(argv, writer);
      co_await writer.drain();
    }
  } catch (const weft::io::IncompleteReadError&) {
    // The client closed the connection.
  } catch (const weft::io::LimitOverrunError&) {
    writer.write("-ERR Protocol error: too big inline request\r\n");
  }
  writer.close();
}

weft::Task<void> serve(const char* host, std::uint16_t port) {
  weft::io::Server server = weft::io::start_server(resp, host, port);
  std::printf("listening on %s\n", server.address().to_string().c_str());
  std::fflush(stdout);
  co_await server.serve_forever();
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<ServerArgs> args = parse_server_args(argc, argv);
  if (!args) return 2;
  weft::RuntimeOptions options;
  options.workers = args->workers;
  try {
    weft::run(serve(args->host, args->port), options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "resp_server: %s\n", e.what());
    return 1;
  }
}
