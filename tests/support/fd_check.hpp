// No leaked descriptors: include this FIRST in an I/O test file. It
// registers a Catch2 listener that counts /proc/self/fd before and after
// every test case and fails the executable (exit status 1, with the leaked
// descriptors' targets on stderr) if a test case ends with more open
// descriptors than it started with. ctest runs each test case on its own, so
// this is also the count before and after the whole test file.
#pragma once

#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <dirent.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

namespace weft_test {

/// The open descriptors of this process (without the one listing them).
inline std::set<int> open_fds() {
  std::set<int> fds;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return fds;
  int self = ::dirfd(d);
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::atoi(e->d_name);
    if (fd != self) fds.insert(fd);
  }
  ::closedir(d);
  return fds;
}

struct FdLeakListener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  std::set<int> before;
  void testCaseStarting(const Catch::TestCaseInfo& info) override {
    before = open_fds();
    TestEventListenerBase::testCaseStarting(info);
  }
  void testCaseEnded(const Catch::TestCaseStats& stats) override {
    std::set<int> after = open_fds();
    bool leaked = false;
    for (int fd : after) {
      if (before.count(fd)) continue;
      char target[512] = {};
      std::string link = "/proc/self/fd/" + std::to_string(fd);
      ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      if (n < 0) n = 0;
      std::fprintf(stderr, "fd leak in '%s': descriptor %d -> %s\n", stats.testInfo.name.c_str(),
                   fd, target);
      leaked = true;
    }
    TestEventListenerBase::testCaseEnded(stats);
    if (leaked) {
      std::fflush(nullptr);
      std::_Exit(1);
    }
  }
};
CATCH_REGISTER_LISTENER(FdLeakListener)

}  // namespace weft_test
