// Registered ("fixed") buffers (weft/io/fixed_buffer.hpp, File::read_fixed_at
// and write_fixed_at): round trips through whole buffers and ranges inside
// them, the pool's checkout and give-back, use from tasks on both workers,
// a buffer kept past its runtime, and every kind of bad input raising a
// ValueError that names what was wrong, before anything reaches the kernel.
// fd_check.hpp fails the file if any test leaks a descriptor. Results are
// awaited into locals before CHECK (see io_socket_test.cpp for why).
#include "../support/fd_check.hpp"
// (fd_check.hpp first: it configures Catch)
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>
#include <weft/io.hpp>
#include <weft/weft.hpp>

#include "../support/test_helpers.hpp"

using weft::Task;
namespace io = weft::io;

namespace {

/// A fresh file under /tmp, removed at the end.
struct TempFile {
  std::string path;
  TempFile() {
    char tmpl[] = "/tmp/weft-io-fixed-XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    ::close(fd);
    path = tmpl;
  }
  ~TempFile() { ::unlink(path.c_str()); }
};

weft::RuntimeOptions with_fixed(unsigned workers, unsigned count, std::size_t size) {
  weft::RuntimeOptions o = weft_test::workers(workers);
  o.fixed_buffers = count;
  o.fixed_buffer_size = size;
  return o;
}

/// The what() of the ValueError `f` throws, or "" if it throws nothing.
template <class F>
std::string value_error_of(F&& f) {
  try {
    f();
  } catch (const weft::ValueError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("io fixed buffers: write_fixed_at and read_fixed_at round trip, whole and ranges",
          "[io][file][fixed]") {
  TempFile tf;
  weft::Runtime rt(with_fixed(2, 4, 8192));
  rt.block_on([](const TempFile* t) -> Task<void> {
    io::File f = co_await io::File::open(t->path, O_RDWR | O_TRUNC);
    auto a = io::FixedBuffer::try_acquire();
    auto b = io::FixedBuffer::try_acquire();
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->size() == 8192);
    CHECK(a->index() != b->index());
    // Every buffer starts on a page (O_DIRECT).
    CHECK(reinterpret_cast<std::uintptr_t>(a->data()) % 4096 == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(b->data()) % 4096 == 0);
    for (std::size_t i = 0; i < a->size(); ++i) a->data()[i] = static_cast<std::byte>(i * 7 + 3);

    // The whole buffer, then a range of it at another offset.
    std::size_t w1 = co_await f.write_fixed_at(*a, 0);
    CHECK(w1 == 8192);
    std::size_t w2 =
        co_await f.write_fixed_at(io::ConstBuffer(a->data() + 100, 50), a->index(), 8192);
    CHECK(w2 == 50);

    // Read the whole back into the other buffer.
    std::size_t r1 = co_await f.read_fixed_at(*b, 0);
    CHECK(r1 == 8192);
    CHECK(std::memcmp(a->data(), b->data(), 8192) == 0);
    // A range in the middle of a buffer, and a short read at end of file.
    std::memset(b->data(), 0, b->size());
    std::size_t r2 =
        co_await f.read_fixed_at(io::MutableBuffer(b->data() + 10, 4000), b->index(), 8190);
    CHECK(r2 == 52);  // 2 bytes of the first write, then the 50 of the second
    CHECK(std::memcmp(b->data() + 10, a->data() + 8190, 2) == 0);
    CHECK(std::memcmp(b->data() + 12, a->data() + 100, 50) == 0);
    CHECK(b->data()[9] == std::byte{0});
    // first(n) is the explicit form's usual argument.
    std::size_t r3 = co_await f.read_fixed_at(b->first(16), b->index(), 0);
    CHECK(r3 == 16);
    CHECK(std::memcmp(b->data(), a->data(), 16) == 0);
    // The plain read sees what the fixed writes wrote.
    std::vector<char> plain(8242);
    std::size_t r4 = co_await f.read_at(plain, 0);
    CHECK(r4 == 8242);
    CHECK(std::memcmp(plain.data(), a->data(), 8192) == 0);
    co_await f.close();
  }(&tf));
}

TEST_CASE("io fixed buffers: the pool hands each buffer out once and takes it back",
          "[io][fixed]") {
  weft::Runtime rt(with_fixed(1, 3, 100));
  rt.block_on([]() -> Task<void> {
    CHECK(io::FixedBuffer::available() == 3);
    std::vector<io::FixedBuffer> held;
    for (int i = 0; i < 3; ++i) {
      auto b = io::FixedBuffer::try_acquire();
      REQUIRE(b);
      CHECK(b->size() == 100);
      held.push_back(std::move(*b));
    }
    CHECK(io::FixedBuffer::available() == 0);
    auto none = io::FixedBuffer::try_acquire();
    CHECK_FALSE(none);
    // Distinct indices 0..2.
    unsigned mask = 0;
    for (auto& b : held) mask |= 1u << b.index();
    CHECK(mask == 7);
    // Moving keeps one checkout; destroying gives it back.
    io::FixedBuffer moved = std::move(held.back());
    held.pop_back();
    CHECK(moved.valid());
    CHECK(io::FixedBuffer::available() == 0);
    { io::FixedBuffer gone = std::move(moved); }
    CHECK(io::FixedBuffer::available() == 1);
    held.clear();
    CHECK(io::FixedBuffer::available() == 3);
    co_return;
  }());
}

TEST_CASE("io fixed buffers: tasks on both workers read through the same indices",
          "[io][file][fixed]") {
  TempFile tf;
  constexpr unsigned kTasks = 16;
  constexpr std::size_t kBlock = 4096;
  {
    std::string data(kTasks * kBlock, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13 + i / kBlock);
    int fd = ::open(tf.path.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  weft::Runtime rt(with_fixed(2, kTasks, kBlock));
  auto bad = rt.block_on([](const TempFile* t) -> Task<unsigned> {
    io::File f = co_await io::File::open(t->path, O_RDONLY);
    std::vector<weft::JoinHandle<unsigned>> hs;
    for (unsigned k = 0; k < kTasks; ++k)
      hs.push_back(weft::spawn([](const io::File* fp, unsigned task) -> Task<unsigned> {
        auto buf = io::FixedBuffer::try_acquire();
        if (!buf) co_return 1000;
        unsigned wrong = 0;
        // Yields between reads so the task may move between workers.
        for (unsigned round = 0; round < 50; ++round) {
          const unsigned blk = (task + round) % kTasks;
          std::size_t n = co_await fp->read_fixed_at(*buf, blk * kBlock);
          if (n != kBlock) ++wrong;
          for (std::size_t i = 0; i < kBlock; i += 511) {
            const std::size_t at = blk * kBlock + i;
            if (buf->data()[i] != static_cast<std::byte>(static_cast<char>(at * 13 + at / kBlock)))
              ++wrong;
          }
          co_await weft::yield_now();
        }
        co_return wrong;
      }(&f, k)));
    unsigned bad_total = 0;
    for (auto& h : hs) bad_total += co_await h;
    co_return bad_total;
  }(&tf));
  CHECK(bad == 0);
}

TEST_CASE("io fixed buffers: a buffer kept past its runtime is still memory", "[io][fixed]") {
  std::optional<io::FixedBuffer> kept;
  {
    weft::Runtime rt(with_fixed(1, 2, 64));
    kept = rt.block_on([]() -> Task<std::optional<io::FixedBuffer>> {
      co_return io::FixedBuffer::try_acquire();
    }());
  }
  REQUIRE(kept);
  REQUIRE(kept->valid());
  std::memset(kept->data(), 0x5a, kept->size());  // ASan: still allocated
  CHECK(kept->data()[63] == std::byte{0x5a});
  kept.reset();  // the last reference frees the pool
}

TEST_CASE("io fixed buffers: bad input raises ValueError naming what was wrong",
          "[io][file][fixed]") {
  TempFile tf;
  SECTION("no registered buffers in the runtime") {
    weft::Runtime rt(weft_test::workers(1));
    rt.block_on([](const TempFile* t) -> Task<void> {
      io::File f = co_await io::File::open(t->path, O_RDWR);
      std::string e1 = value_error_of([] { (void)io::FixedBuffer::try_acquire(); });
      CHECK(contains(e1, "no registered buffers"));
      CHECK(io::FixedBuffer::available() == 0);
      char buf[16];
      std::string e2 = value_error_of([&] { (void)f.read_fixed_at(buf, 0, 0); });
      CHECK(contains(e2, "read_fixed_at"));
      CHECK(contains(e2, "no registered buffers"));
      co_await f.close();
    }(&tf));
  }
  SECTION("index out of range, memory outside the buffer, length too large") {
    weft::Runtime rt(with_fixed(1, 2, 4096));
    rt.block_on([](const TempFile* t) -> Task<void> {
      io::File f = co_await io::File::open(t->path, O_RDWR);
      auto a = io::FixedBuffer::try_acquire();
      auto b = io::FixedBuffer::try_acquire();
      REQUIRE(a);
      REQUIRE(b);

      std::string e1 = value_error_of([&] { (void)f.read_fixed_at(a->first(10), 2, 0); });
      CHECK(contains(e1, "buffer index 2 out of range"));
      CHECK(contains(e1, "registered 2 buffers"));
      std::string e1w = value_error_of([&] { (void)f.write_fixed_at(a->first(10), 99, 0); });
      CHECK(contains(e1w, "write_fixed_at"));
      CHECK(contains(e1w, "buffer index 99 out of range"));

      // Memory that is not registered at all, and buffer b's memory under a's index.
      char stack[64];
      std::string e2 = value_error_of([&] { (void)f.read_fixed_at(stack, a->index(), 0); });
      CHECK(contains(e2, "is not inside registered buffer"));
      std::string e3 = value_error_of([&] { (void)f.read_fixed_at(b->first(8), a->index(), 0); });
      CHECK(contains(e3, "is not inside registered buffer"));

      // One byte past the end, from the start and from the middle.
      std::string e4 = value_error_of(
          [&] { (void)f.read_fixed_at(io::MutableBuffer(a->data(), 4097), a->index(), 0); });
      CHECK(contains(e4, "length 4097 too large"));
      std::string e5 = value_error_of(
          [&] { (void)f.write_fixed_at(io::ConstBuffer(a->data() + 4000, 97), a->index(), 0); });
      CHECK(contains(e5, "length 97 too large"));
      CHECK(contains(e5, "has 96 bytes"));
      std::string e6 = value_error_of([&] { (void)a->first(4097); });
      CHECK(contains(e6, "4097"));

      // Nothing was submitted: the file is untouched and the buffers still work.
      std::size_t w = co_await f.write_fixed_at(a->first(3), a->index(), 0);
      CHECK(w == 3);
      co_await f.close();
    }(&tf));
  }
  SECTION("bad runtime options and a call outside the runtime") {
    CHECK_THROWS_AS(weft::Runtime(with_fixed(1, 20000, 4096)), weft::ValueError);
    CHECK_THROWS_AS(weft::Runtime(with_fixed(1, 2, 0)), weft::ValueError);
    CHECK_THROWS_AS(weft::Runtime(with_fixed(1, 2, (std::size_t{1} << 30) + 1)), weft::ValueError);
    CHECK_THROWS_AS(io::FixedBuffer::try_acquire(), weft::RuntimeError);
  }
}
