// <weft/weft.hpp>: all of weft. Link weft::weft.
//
// asyncio's model on every core: Task<T> coroutines, spawn/JoinHandle, a Loop
// per worker thread on its own io_uring ring, work stealing between workers,
// thread-safe Future/Promise, and run() with asyncio.run's shutdown order.
#pragma once

#include <weft/clock.hpp>
#include <weft/errors.hpp>
#include <weft/future.hpp>
#include <weft/io.hpp>
#include <weft/io_op.hpp>
#include <weft/join_handle.hpp>
#include <weft/loop.hpp>
#include <weft/runtime.hpp>
#include <weft/sleep.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>
#include <weft/version.hpp>
#include <weft/executor.hpp>
#include <weft/resolve.hpp>
