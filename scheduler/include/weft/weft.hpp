// <weft/weft.hpp>: all of weft. Link weft::weft.
//
// asyncio's model on every core: Task<T> coroutines, spawn/JoinHandle, a Loop
// per worker thread on its own io_uring ring, work stealing between workers,
// thread-safe Future/Promise, run() with asyncio.run's shutdown order, and
// structured concurrency (gather, wait, timeouts, shield, TaskGroup, async
// generators).
#pragma once

#include <weft/clock.hpp>
#include <weft/errors.hpp>
#include <weft/future.hpp>
#include <weft/io.hpp>
#include <weft/io_op.hpp>
#include <weft/join_handle.hpp>
#include <weft/loop.hpp>
#include <weft/runtime.hpp>
#include <weft/runtime_flags.hpp>
#include <weft/sleep.hpp>
#include <weft/sync.hpp>
#include <weft/task.hpp>
#include <weft/version.hpp>
// Structured concurrency (issue 6).
#include <weft/as_completed.hpp>
#include <weft/async_generator.hpp>
#include <weft/ensure_future.hpp>
#include <weft/exception_group.hpp>
#include <weft/gather.hpp>
#include <weft/shield.hpp>
#include <weft/task_group.hpp>
#include <weft/timeout.hpp>
#include <weft/wait.hpp>
// Executors and name resolution (issue 3).
#include <weft/executor.hpp>
#include <weft/resolve.hpp>
