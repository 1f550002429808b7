// runtime_flags.cpp - RuntimeOptions' knobs from command-line flags; see
// weft/runtime_flags.hpp.
#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <weft/runtime_flags.hpp>

namespace weft {

namespace {

std::uint64_t parse_number(std::string_view flag, std::string_view value, std::uint64_t max) {
  std::uint64_t v = 0;
  const char* first = value.data();
  const char* last = value.data() + value.size();
  const auto [end, ec] = std::from_chars(first, last, v);
  if (value.empty() || ec != std::errc() || end != last || v > max) {
    throw std::invalid_argument(
        "weft: " + std::string(flag) + " takes " +
        (max == 1 ? std::string("0 or 1") : "a number from 0 to " + std::to_string(max)) +
        ", not '" + std::string(value) + "'");
  }
  return v;
}

constexpr std::uint64_t kU32 = std::numeric_limits<std::uint32_t>::max();

}  // namespace

bool set_runtime_flag(RuntimeOptions& o, std::string_view flag, std::string_view value) {
  auto count = [&] { return static_cast<unsigned>(parse_number(flag, value, kU32)); };
  auto on_off = [&] { return parse_number(flag, value, 1) == 1; };
  auto micros = [&] { return std::chrono::microseconds(parse_number(flag, value, kU32)); };
  if (flag == "--ring-entries") {
    o.ring_entries = count();
  } else if (flag == "--lifo-slot") {
    o.lifo_slot = on_off();
  } else if (flag == "--lifo-cap") {
    o.lifo_cap = count();
  } else if (flag == "--global-queue-interval") {
    o.global_queue_interval = count();
  } else if (flag == "--event-interval") {
    o.event_interval = count();
  } else if (flag == "--max-searching") {
    o.max_searching = count();
  } else if (flag == "--spin-before-park") {
    o.spin_before_park = count();
  } else if (flag == "--wake-with-eventfd") {
    o.wake_with_eventfd = on_off();
  } else if (flag == "--trim-threshold") {
    o.trim_threshold = static_cast<std::size_t>(
        parse_number(flag, value, std::numeric_limits<std::size_t>::max()));
  } else if (flag == "--park-spin-us") {
    o.park_spin = micros();
  } else if (flag == "--sibling-spin-us") {
    o.sibling_spin = micros();
  } else if (flag == "--blocking-idle-spin-us") {
    o.blocking_idle_spin = micros();
  } else if (flag == "--help-cpu-pools") {
    o.help_cpu_pools = on_off();
  } else if (flag == "--refill-frames") {
    o.refill_frames = on_off();
  } else if (flag == "--eager-file-submit") {
    o.eager_file_submit = on_off();
  } else {
    return false;
  }
  return true;
}

const char* runtime_flags_usage() noexcept {
  return "  [--ring-entries 256] [--lifo-slot 0|1] [--lifo-cap 3]\n"
         "  [--global-queue-interval 31] [--event-interval 61] [--max-searching 0]\n"
         "  [--spin-before-park 32] [--wake-with-eventfd 0|1] [--trim-threshold BYTES]\n"
         "  [--park-spin-us 0] [--sibling-spin-us 50] [--blocking-idle-spin-us 50]\n"
         "  [--help-cpu-pools 0|1] [--refill-frames 0|1] [--eager-file-submit 0|1]\n";
}

}  // namespace weft
