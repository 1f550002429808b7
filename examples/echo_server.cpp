// examples/echo_server.cpp - a TCP echo server on weft's streams.
//
//   build/release/examples/echo_server --port 8888 --workers 2
//
// Every connection is a task that reads what arrives and writes it back.
// The benchmark runner (bench/run --only tcp_echo) starts it with --port and
// --workers and drives it with 64 connections; tests/examples/servers_test.cpp
// checks it with a plain socket client.
#include <cstdio>
#include <string>
#include <weft/io/errors.hpp>
#include <weft/io/server.hpp>
#include <weft/weft.hpp>

#include "server_main.hpp"

namespace {

weft::Task<void> echo(weft::io::StreamReader reader, weft::io::StreamWriter writer) {
  try {
    for (;;) {
      std::string data = co_await reader.read(64 * 1024);
      if (data.empty()) break;  // the client closed its side
      writer.write(data);
      co_await writer.drain();
    }
  } catch (const weft::io::ConnectionResetError&) {
    // The client reset the connection (a load generator does at its end):
    // that ends this connection like EOF does, not worth a report.
  }
  writer.close();
}

}  // namespace

int main(int argc, char** argv) { return server_main(argc, argv, "echo_server", echo); }
