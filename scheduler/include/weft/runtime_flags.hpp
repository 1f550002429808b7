// weft/runtime_flags.hpp - RuntimeOptions' tuning knobs as command-line flags.
//
// Every tuning knob of RuntimeOptions has a flag named after the field
// (underscores become dashes; a duration is given in microseconds and its
// flag ends in -us), so a program can hand the knob flags of its command
// line to weft, as Seastar's app_template does with its reactor options.
// weft_bench, weft_file_read and the example servers accept them all, and
// bench/run passes its knob flags (and --weft-arg) to each of them, so a
// knob given to the runner applies to every weft row it measures.
//
//   --ring-entries N           --lifo-slot 0|1          --lifo-cap N
//   --global-queue-interval N  --event-interval N       --max-searching N
//   --spin-before-park N       --wake-with-eventfd 0|1  --trim-threshold BYTES
//   --park-spin-us N           --sibling-spin-us N      --blocking-idle-spin-us N
//   --help-cpu-pools 0|1       --refill-frames 0|1      --eager-file-submit 0|1
//
// `workers` is not among them: each program has its own --workers, with its
// own default. What each knob does is in runtime.hpp and the README's
// "Tuning" section.
//
// Threads: any (pure functions).
#pragma once

#include <string_view>
#include <weft/runtime.hpp>

namespace weft {

/// If `flag` (for example "--lifo-cap") names a RuntimeOptions knob, sets
/// that knob in `options` from `value` and returns true; for any other flag
/// returns false and leaves `options` as it was. Throws
/// std::invalid_argument, naming the flag and the value, if the value is not
/// a decimal number in the knob's range (0 or 1 for an on/off knob, at most
/// 2^32 - 1 for a count or a number of microseconds).
bool set_runtime_flag(RuntimeOptions& options, std::string_view flag, std::string_view value);

/// The knob flags with their defaults, for a usage text: lines starting with
/// two spaces, each ending in a newline.
const char* runtime_flags_usage() noexcept;

}  // namespace weft
