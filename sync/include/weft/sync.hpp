// <weft/sync.hpp>: weft::sync, coroutine synchronisation primitives.
//
// Lock, Event, Condition, Semaphore, Barrier, Queue and Channel, in the shape
// of asyncio's, but safe to use from tasks running on different workers.
//
// Placeholder: the primitives arrive with their issues.
#pragma once
