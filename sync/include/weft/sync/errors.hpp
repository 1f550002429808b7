// weft/sync/errors.hpp - the errors of the sync primitives, named after
// asyncio's. All derive from weft::Error. Plain value types: any thread may
// create, copy and throw them.
#pragma once

#include <weft/errors.hpp>

namespace weft {

/// asyncio.QueueEmpty: get_nowait() on an empty queue.
class QueueEmpty : public Error {
 public:
  QueueEmpty() : Error("QueueEmpty") {}
};
/// asyncio.QueueFull: put_nowait() on a full queue.
class QueueFull : public Error {
 public:
  QueueFull() : Error("QueueFull") {}
};
/// asyncio.QueueShutDown (3.13): put after shutdown(), get after the drain.
class QueueShutDown : public Error {
 public:
  QueueShutDown() : Error("QueueShutDown") {}
};
/// asyncio.BrokenBarrierError: waiting on an aborted or reset barrier.
class BrokenBarrierError : public Error {
 public:
  BrokenBarrierError() : Error("BrokenBarrierError") {}
};
/// A Channel or oneshot whose other side has gone: send on a closed channel,
/// receive from a oneshot whose sender was dropped unsent.
class ChannelClosed : public Error {
 public:
  ChannelClosed() : Error("ChannelClosed") {}
};

}  // namespace weft
