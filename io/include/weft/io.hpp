// <weft/io.hpp>: weft::io, I/O operations on the current worker's io_uring ring.
//
// Files (weft/io/file.hpp), TCP (weft/io/tcp.hpp), UDP (weft/io/udp.hpp),
// Unix stream sockets (weft/io/unix.hpp), addresses (weft/io/address.hpp),
// errors (weft/io/errors.hpp), streams and servers (weft/io/streams.hpp,
// weft/io/server.hpp), signals (weft/io/signal.hpp), subprocesses
// (weft/io/process.hpp). Every operation is submitted to the ring of
// the loop the awaiting task runs on; the reactor that owns the ring lives
// in weft::scheduler (DESIGN.md §1, weft/io_op.hpp). Every operation takes
// an optional timeout (a linked timeout) and is cancel-safe (DESIGN.md §4).
#pragma once

#include <weft/io/address.hpp>
#include <weft/io/buffer.hpp>
#include <weft/io/errors.hpp>
#include <weft/io/file.hpp>
#include <weft/io/fixed_buffer.hpp>
#include <weft/io/op.hpp>
#include <weft/io/process.hpp>
#include <weft/io/server.hpp>
#include <weft/io/signal.hpp>
#include <weft/io/socket.hpp>
#include <weft/io/streams.hpp>
#include <weft/io/tcp.hpp>
#include <weft/io/udp.hpp>
#include <weft/io/unix.hpp>
#include <weft/io_op.hpp>
