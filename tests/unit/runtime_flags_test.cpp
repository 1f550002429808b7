// weft/runtime_flags.hpp: every RuntimeOptions knob from its command-line
// flag, anything else left alone, and bad values refused with a message that
// names the flag and the value.
#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <string>
#include <weft/runtime_flags.hpp>

using namespace std::chrono_literals;

TEST_CASE("runtime flags: each knob flag sets its RuntimeOptions field", "[flags]") {
  weft::RuntimeOptions o;
  CHECK(weft::set_runtime_flag(o, "--ring-entries", "128"));
  CHECK(weft::set_runtime_flag(o, "--lifo-slot", "0"));
  CHECK(weft::set_runtime_flag(o, "--lifo-cap", "5"));
  CHECK(weft::set_runtime_flag(o, "--global-queue-interval", "17"));
  CHECK(weft::set_runtime_flag(o, "--event-interval", "13"));
  CHECK(weft::set_runtime_flag(o, "--max-searching", "1"));
  CHECK(weft::set_runtime_flag(o, "--spin-before-park", "0"));
  CHECK(weft::set_runtime_flag(o, "--wake-with-eventfd", "1"));
  CHECK(weft::set_runtime_flag(o, "--trim-threshold", "4096"));
  CHECK(weft::set_runtime_flag(o, "--park-spin-us", "10"));
  CHECK(weft::set_runtime_flag(o, "--sibling-spin-us", "0"));
  CHECK(weft::set_runtime_flag(o, "--blocking-idle-spin-us", "7"));
  CHECK(weft::set_runtime_flag(o, "--help-cpu-pools", "1"));
  CHECK(weft::set_runtime_flag(o, "--refill-frames", "0"));
  CHECK(weft::set_runtime_flag(o, "--eager-file-submit", "0"));
  CHECK(o.ring_entries == 128);
  CHECK_FALSE(o.lifo_slot);
  CHECK(o.lifo_cap == 5);
  CHECK(o.global_queue_interval == 17);
  CHECK(o.event_interval == 13);
  CHECK(o.max_searching == 1);
  CHECK(o.spin_before_park == 0);
  CHECK(o.wake_with_eventfd);
  CHECK(o.trim_threshold == 4096);
  CHECK(o.park_spin == 10us);
  CHECK(o.sibling_spin == 0us);
  CHECK(o.blocking_idle_spin == 7us);
  CHECK(o.help_cpu_pools);
  CHECK_FALSE(o.refill_frames);
  CHECK_FALSE(o.eager_file_submit);
}

TEST_CASE("runtime flags: a flag that is not a knob returns false and changes nothing", "[flags]") {
  weft::RuntimeOptions o;
  const weft::RuntimeOptions before = o;
  CHECK_FALSE(weft::set_runtime_flag(o, "--workers", "4"));  // each program has its own
  CHECK_FALSE(weft::set_runtime_flag(o, "--port", "80"));
  CHECK_FALSE(weft::set_runtime_flag(o, "lifo-cap", "5"));  // no dashes: not a flag
  CHECK(o.workers == before.workers);
  CHECK(o.lifo_cap == before.lifo_cap);
}

TEST_CASE("runtime flags: a bad value throws invalid_argument naming the flag and the value",
          "[flags]") {
  struct Bad {
    const char* flag;
    const char* value;
  };
  const Bad bad[] = {{"--lifo-cap", "x"},          {"--lifo-cap", ""},
                     {"--lifo-cap", "-1"},         {"--lifo-cap", "3x"},
                     {"--lifo-cap", "4294967296"}, {"--lifo-slot", "2"},
                     {"--park-spin-us", "1.5"},    {"--trim-threshold", "99999999999999999999"}};
  for (const Bad& b : bad) {
    INFO(b.flag << " " << b.value);
    weft::RuntimeOptions o;
    const unsigned cap = o.lifo_cap;
    try {
      weft::set_runtime_flag(o, b.flag, b.value);
      FAIL("no exception");
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      CHECK(what.find(b.flag) != std::string::npos);
      CHECK(what.find(std::string("'") + b.value + "'") != std::string::npos);
    }
    CHECK(o.lifo_cap == cap);  // left as it was
  }
}
