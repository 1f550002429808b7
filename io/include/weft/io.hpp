// <weft/io.hpp>: weft::io, I/O operations on the current worker's io_uring ring.
//
// Files, sockets, streams, signals and processes. Every operation is submitted
// to the ring of the loop the awaiting task runs on; the reactor that owns the
// ring lives in weft::scheduler (DESIGN.md §1).
//
#pragma once

#include <weft/io/streams.hpp>
