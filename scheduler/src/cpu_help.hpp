// cpu_help.hpp - the hook through which an idle worker runs CpuPool jobs
// (cpu_pool.cpp explains why and how; worker.cpp calls it just before it
// would park).
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft::detail {

/// What a helping worker is asked between jobs. Implemented by the worker;
/// called on the worker's own thread, inside the pool's arena.
class CpuHelper {
 public:
  /// Before each job, the first one included: true = stop helping and go
  /// back to the loop (it has work, is stopping, or a timer is due).
  /// `expected_ns` is how long the pool's recent jobs took.
  virtual bool stop_before_job(std::int64_t expected_ns) noexcept = 0;

 protected:
  ~CpuHelper() = default;
};

/// False when no CpuPool has queued jobs (then help_cpu_pools would do
/// nothing). A relaxed load: a stale answer costs one look or one turn.
bool cpu_pools_want_help() noexcept;

/// Runs queued jobs of a CpuPool that has some and a free slot, on the
/// calling thread, until the queue is empty or `h` says stop, as long as
/// the pool's recent jobs took less than `longest_job_ns` each (a pool whose
/// jobs were never timed is not helped). Returns how many jobs it ran (0:
/// nothing to help with, the caller parks as before). No lock is taken and
/// nothing is allocated when no pool has queued jobs.
std::size_t help_cpu_pools(CpuHelper& h, std::int64_t longest_job_ns) noexcept;

}  // namespace weft::detail
