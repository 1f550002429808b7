// The seeds and sizes of the randomised stress tests (tests/stress/*.cpp),
// so that every failure can be replayed: the test prints its seed, and
// WEFT_STRESS_SEED=<seed> runs that one again.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace weft_test {

/// The seed in WEFT_STRESS_SEED alone (a replay), or else `count`
/// consecutive seeds from a random base.
inline std::vector<std::uint64_t> stress_seeds(int count) {
  std::vector<std::uint64_t> seeds;
  if (const char* one = std::getenv("WEFT_STRESS_SEED")) {
    seeds.push_back(std::strtoull(one, nullptr, 10));
  } else {
    const std::uint64_t base = std::random_device{}();
    for (int i = 0; i < count; ++i) seeds.push_back(base + static_cast<std::uint64_t>(i));
  }
  return seeds;
}

/// `release` in an optimised build, `sanitized` under ASan or TSan (5-20x
/// slower there): the size of a stress test's run.
constexpr int build_size(int release, int sanitized) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  (void)release;
  return sanitized;
#else
  (void)sanitized;
  return release;
#endif
}

/// What a failing seed prints: the seed and how to run it again at size `n`.
inline std::string replay(std::uint64_t seed, int n) {
  return "seed " + std::to_string(seed) + " (replay: WEFT_STRESS_SEED=" + std::to_string(seed) +
         " WEFT_STRESS_TASKS=" + std::to_string(n) + ")";
}

/// The integer in environment variable `name`, or `fallback` if it is unset.
inline int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::atoi(v) : fallback;
}

}  // namespace weft_test
