// asyncgen_hooks.hpp - what Runtime::shutdown() calls into the async
// generator machinery (async_generator.cpp). Private to the scheduler.
#pragma once

namespace weft {
class Runtime;
}

namespace weft::detail {
/// asyncio's shutdown_asyncgens: closes every generator of `rt` still
/// suspended at a co_yield, each in a task, and waits for them. Called from
/// the thread running shutdown(), after the remaining tasks finished.
void finalize_async_generators(Runtime& rt);
}  // namespace weft::detail
