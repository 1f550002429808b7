// <weft/sync.hpp>: weft::sync, coroutine synchronisation primitives.
//
// Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier, Queue,
// LifoQueue, PriorityQueue, Channel and oneshot, in the shape of asyncio's
// (and Tokio's for the channels), safe to use from tasks running on
// different workers. See each header for its threading contract.
#pragma once

#include <weft/sync/barrier.hpp>
#include <weft/sync/channel.hpp>
#include <weft/sync/condition.hpp>
#include <weft/sync/errors.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/lock.hpp>
#include <weft/sync/oneshot.hpp>
#include <weft/sync/queue.hpp>
#include <weft/sync/semaphore.hpp>
