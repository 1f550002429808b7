// slow_step.cpp - debug mode's blocking detector (asyncio's
// slow_callback_duration): a task step that runs longer than
// RuntimeOptions::slow_step_threshold stalls its loop, most often because it
// made a blocking call that belongs in run_in_executor. Worker::run_task calls
// this instead of resume_chain only when RuntimeOptions::debug is set.
#include <cstdio>
#include <weft/join_handle.hpp>

#include "worker.hpp"

namespace weft::detail {

void Worker::run_step_timed(TaskHeader* t) noexcept {
  const TimePoint start = Clock::now();
  resume_chain(t->resume_point);
  const Duration took = Clock::now() - start;
  if (took < rt_.opts.slow_step_threshold) return;
  try {
    // The worker still holds the task's own reference here (run_task drops it
    // after this returns), so taking another is safe even if it completed.
    TaskRef ref(t);
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.3f",
                  std::chrono::duration_cast<std::chrono::duration<double>>(took).count());
    rt_.report({"Executing task " + ref.name() + " took " + secs + " seconds", nullptr, ref});
  } catch (...) {
  }
}

}  // namespace weft::detail
