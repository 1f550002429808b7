// examples/http_hello.cpp - an HTTP/1.1 server answering every request with
// the 13-byte body "Hello, World!", with keep-alive and pipelining.
//
//   build/release/examples/http_hello --port 8080 --workers 2
//   curl -s http://127.0.0.1:8080/
//
// One task per connection reads what arrived, answers every complete request
// in it, and sends those responses together: pipelined requests cost one
// read and one send per burst. A request body (Content-Length) is
// read and dropped (up to 1 MiB, 413 above); chunked bodies are refused (501) and the connection
// closed. HTTP/1.0 closes after the response unless it asks for keep-alive.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>
#include <string_view>
#include <weft/io/errors.hpp>
#include <weft/io/server.hpp>
#include <weft/weft.hpp>

#include "server_main.hpp"

namespace {

constexpr std::string_view kHello =
    "HTTP/1.1 200 OK\r\n"
    "Server: weft\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "Hello, World!";

constexpr std::string_view kBadRequest =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
constexpr std::string_view kTooLarge =
    "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: "
    "close\r\n\r\n";
constexpr std::string_view kBodyTooLarge =
    "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
constexpr std::string_view kNotImplemented =
    "HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

constexpr long kMaxBody = 1 << 20;           // larger bodies are refused (413)
constexpr std::size_t kMaxHead = 64 * 1024;  // larger heads are refused (431)

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct Head {
  bool ok = false;
  bool keep_alive = true;
  bool chunked = false;
  long content_length = 0;
};

// Parses "METHOD target HTTP/1.x\r\n" and the header lines that matter.
Head parse_head(std::string_view h) {
  Head r;
  std::size_t eol = h.find("\r\n");
  std::string_view line = h.substr(0, eol);
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return r;
  std::string_view version = line.substr(sp2 + 1);
  if (version == "HTTP/1.1") {
    r.keep_alive = true;
  } else if (version == "HTTP/1.0") {
    r.keep_alive = false;
  } else {
    return r;
  }
  std::size_t pos = eol + 2;
  while (pos < h.size()) {
    std::size_t end = h.find("\r\n", pos);
    if (end == std::string_view::npos || end == pos) break;
    std::string_view field = h.substr(pos, end - pos);
    pos = end + 2;
    std::size_t colon = field.find(':');
    if (colon == std::string_view::npos) return r;
    std::string_view name = field.substr(0, colon);
    std::string_view value = trim(field.substr(colon + 1));
    if (iequals(name, "connection")) {
      if (iequals(value, "close")) r.keep_alive = false;
      if (iequals(value, "keep-alive")) r.keep_alive = true;
    } else if (iequals(name, "content-length")) {
      long n = 0;
      for (char c : value) {
        if (c < '0' || c > '9' || n > (1L << 40)) return r;
        n = n * 10 + (c - '0');
      }
      r.content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      r.chunked = true;
    }
  }
  r.ok = true;
  return r;
}

// One connection: read what arrived, answer every complete request in it
// (pipelined requests are answered together, in one send), repeat.
weft::Task<void> http(weft::io::StreamReader reader, weft::io::StreamWriter writer) {
  std::string in, out;
  std::size_t pos = 0;
  bool open = true;
  try {
    while (open) {
      // Every complete request in the buffer.
      for (;;) {
        std::size_t end = in.find("\r\n\r\n", pos);
        if (end == std::string::npos) {
          if (in.size() - pos > kMaxHead) {
            out += kTooLarge;
            open = false;
          }
          break;
        }
        Head h = parse_head(std::string_view(in).substr(pos, end + 4 - pos));
        if (!h.ok || h.chunked || h.content_length > kMaxBody) {
          out += !h.ok ? kBadRequest : h.chunked ? kNotImplemented : kBodyTooLarge;
          open = false;
          break;
        }
        const std::size_t next = end + 4 + static_cast<std::size_t>(h.content_length);
        if (next > in.size()) break;  // the body is still on its way: read on
        pos = next;                   // the body (if any) is skipped
        out += kHello;
        if (!h.keep_alive) {
          open = false;
          break;
        }
      }
      if (!out.empty()) {
        writer.write(out);
        out.clear();
        if (open) co_await writer.drain();
      }
      if (!open) break;
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
    // The client reset the connection (wrk does at its end): that ends this
    // connection like EOF does, not worth a report.
  }
  writer.close();
  co_await writer.wait_closed();
}

}  // namespace

int main(int argc, char** argv) { return server_main(argc, argv, "http_hello", http); }
