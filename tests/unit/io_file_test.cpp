// Files on the ring (weft/io/file.hpp): every operation against a temporary
// directory, errors naming their operation, and a timeout on a pipe read.
// fd_check.hpp fails the file if any test leaks a descriptor. Results are
// awaited into locals before CHECK (see io_socket_test.cpp for why).
#include "../support/fd_check.hpp"
// (fd_check.hpp first: it configures Catch)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <weft/io.hpp>
#include <weft/weft.hpp>

#include "../support/test_helpers.hpp"

using namespace std::chrono_literals;
using weft::Task;
using weft_test::workers;
namespace io = weft::io;

namespace {

/// A fresh directory under /tmp, removed (with its files) at the end.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/weft-io-file-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

}  // namespace

TEST_CASE("io file: write_file and read_file round trip, small, empty, large and /proc",
          "[io][file]") {
  TempDir dir;
  weft::Runtime rt(workers(2));
  rt.block_on([](const TempDir* d) -> Task<void> {
    co_await io::write_file(*d / "small", "hello file");
    std::string small = co_await io::read_file(*d / "small");
    CHECK(small == "hello file");

    co_await io::write_file(*d / "empty", "");
    std::string empty = co_await io::read_file(*d / "empty");
    CHECK(empty.empty());

    std::string big(3 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + 7);
    co_await io::write_file(*d / "big", big, 30s);
    std::string back = co_await io::read_file(*d / "big", 30s);
    CHECK(back == big);

    // /proc files report size 0: read_file reads until end of file anyway.
    std::string status = co_await io::read_file("/proc/self/status");
    CHECK(status.find("Name:") != std::string::npos);
  }(&dir));
}

TEST_CASE("io file: read/write at the current position and at offsets, readv/writev",
          "[io][file]") {
  TempDir dir;
  weft::Runtime rt(workers(1));
  rt.block_on([](const TempDir* d) -> Task<void> {
    io::File f = co_await io::File::open(*d / "f", O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(f.is_open());
    std::size_t w1 = co_await f.write("0123");
    std::size_t w2 = co_await f.write("4567");  // continues at the position
    CHECK(w1 == 4);
    CHECK(w2 == 4);
    std::size_t w3 = co_await f.write_at("AB", 2);  // position unchanged
    CHECK(w3 == 2);
    char buf[16] = {};
    std::size_t r1 = co_await f.read_at({buf, sizeof buf}, 0);
    CHECK(std::string(buf, r1) == "01AB4567");
    std::size_t eof = co_await f.read(buf);  // the position is at 8, the end
    CHECK(eof == 0);

    std::string a = "xx", b = "yyy";
    iovec out[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
    std::size_t wv = co_await f.writev(out);  // at the position (8)
    CHECK(wv == 5);
    std::size_t wva = co_await f.writev_at(out, 0);
    CHECK(wva == 5);
    char p[3] = {}, q[10] = {};
    iovec in[2] = {{p, 3}, {q, 10}};
    std::size_t rv = co_await f.readv_at(in, 0);
    CHECK(rv == 13);
    CHECK(std::string(p, 3) == "xxy");
    CHECK(std::string(q, 10) == "yy567xxyyy");

    // readv at the current position: a second handle starts at 0, and each
    // readv moves its position on.
    io::File g = co_await io::File::open(*d / "f", O_RDONLY);
    char g1[2] = {}, g2[4] = {};
    iovec gin[2] = {{g1, 2}, {g2, 4}};
    // (Awaited into locals: CHECK(co_await ...) would run the read twice.)
    std::size_t gr1 = co_await g.readv(gin);
    CHECK(gr1 == 6);
    CHECK(std::string(g1, 2) == "xx");
    CHECK(std::string(g2, 4) == "yyy5");
    std::size_t gr2 = co_await g.readv(gin);
    CHECK(gr2 == 6);
    CHECK(std::string(g1, 2) == "67");
    CHECK(std::string(g2, 4) == "xxyy");
    std::size_t gr3 = co_await g.readv(gin);
    CHECK(gr3 == 1);
    CHECK(g1[0] == 'y');
    std::size_t gr4 = co_await g.readv(gin);
    CHECK(gr4 == 0);  // end of file
    co_await g.close();

    co_await f.fsync();
    co_await f.fdatasync(5s);
    struct statx st = co_await f.stat();
    CHECK(st.stx_size == 13);
    CHECK(S_ISREG(st.stx_mode));
    CHECK((st.stx_mode & 0777) == 0600);

    std::vector<char> all(13);
    co_await f.read_exact_at(all, 0);
    CHECK(std::string(all.begin(), all.end()) == "xxyyy567xxyyy");
    std::vector<char> more(20);
    try {
      co_await f.read_exact_at(more, 0);
      FAIL("no EndOfFileError");
    } catch (const io::EndOfFileError& e) {
      CHECK(std::string(e.what()).find("after 13 of 20 bytes") != std::string::npos);
    }
    co_await f.write_all_at(std::string(100000, 'z'), 13);
    struct statx st2 = co_await f.stat();
    CHECK(st2.stx_size == 100013);
    co_await f.close();
    CHECK_FALSE(f.is_open());
  }(&dir));
}

TEST_CASE("io file: mkdir, rename, stat, unlink, rmdir and their errors", "[io][file]") {
  TempDir dir;
  weft::Runtime rt(workers(1));
  rt.block_on([](const TempDir* d) -> Task<void> {
    co_await io::mkdir(*d / "sub", 0755);
    try {
      co_await io::mkdir(*d / "sub");
      FAIL("mkdir twice");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == EEXIST);
      CHECK(std::string(e.what()).rfind("mkdir", 0) == 0);
    }
    co_await io::write_file(*d / "sub/a", "data");
    co_await io::rename(*d / "sub/a", *d / "sub/b");
    struct statx st = co_await io::stat(*d / "sub/b");
    CHECK(st.stx_size == 4);
    REQUIRE(::symlink((*d / "sub/b").c_str(), (*d / "link").c_str()) == 0);
    struct statx ls = co_await io::stat(*d / "link", false);
    CHECK(S_ISLNK(ls.stx_mode));
    struct statx fs = co_await io::stat(*d / "link", true);
    CHECK(S_ISREG(fs.stx_mode));
    try {
      co_await io::stat(*d / "sub/a");
      FAIL("stat of a renamed file");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == ENOENT);
      CHECK(std::string(e.what()).rfind("statx", 0) == 0);
    }
    try {
      co_await io::rmdir(*d / "sub");
      FAIL("rmdir of a non-empty directory");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == ENOTEMPTY);
    }
    co_await io::unlink(*d / "sub/b");
    co_await io::unlink(*d / "link");
    co_await io::rmdir(*d / "sub");
    try {
      co_await io::unlink(*d / "sub");
      FAIL("unlink of a missing file");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == ENOENT);
      CHECK(std::string(e.what()).rfind("unlink", 0) == 0);
    }
    try {
      co_await io::File::open(*d / "missing");
      FAIL("opened a missing file");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == ENOENT);
      CHECK(std::string(e.what()).rfind("open", 0) == 0);
    }
    try {
      co_await io::read_file(*d / "missing");
      FAIL("read a missing file");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == ENOENT);
    }
  }(&dir));
}

TEST_CASE("io file: a read of an empty pipe times out, then reads what arrives",
          "[io][file][timeout]") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  io::File r(fds[0]), w(fds[1]);
  weft::Runtime rt(workers(2));
  rt.block_on([](io::File* rp, io::File* wp) -> Task<void> {
    char buf[8];
    try {
      co_await rp->read(buf, 30ms);
      FAIL("read of an empty pipe returned");
    } catch (const weft::TimeoutError& e) {
      CHECK(std::string(e.what()) == "read: timed out");
    }
    co_await wp->write("pipe");
    std::size_t n = co_await rp->read(buf, 5s);
    CHECK(std::string(buf, n) == "pipe");
    // Cancelling a read in flight.
    auto h = weft::spawn([](io::File* f) -> Task<void> {
      char b[4];
      co_await f->read(b);
    }(rp));
    co_await weft::sleep(5ms);
    h.cancel();
    CHECK_THROWS_AS(co_await h, weft::CancelledError);
  }(&r, &w));
}

TEST_CASE("io file: a File destroyed open is closed, outside and inside the runtime",
          "[io][file]") {
  TempDir dir;
  int fd = -1;
  weft::Runtime rt(workers(1));
  rt.block_on([](const TempDir* d, int* out) -> Task<void> {
    io::File f = co_await io::File::open(*d / "x", O_WRONLY | O_CREAT, 0644);
    *out = f.fd();
    CHECK(::fcntl(*out, F_GETFD) == FD_CLOEXEC);  // O_CLOEXEC is always added
  }(&dir, &fd));
  CHECK(::fcntl(fd, F_GETFD) == -1);
}

// RuntimeOptions::eager_file_submit: a File operation queued while another
// one is out (here a read of an empty pipe, which the kernel holds) reaches
// the kernel when the step of its task ends, not at the end of the tick; one
// queued while none is out (a page-cache read completes as it is submitted)
// waits for the tick. Observed through the worker's io_uring_enter count,
// read by a task that the same tick runs right after the one that queued
// the read (1 worker, no LIFO slot: the tick runs B, then C, in spawn order).
TEST_CASE(
    "io file: eager_file_submit, a file op queued while another is out is submitted "
    "when its step ends",
    "[io][file]") {
  TempDir dir;
  const std::string path = dir / "data";
  {
    std::string text(4096, 'x');
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    ::close(fd);
  }
  // enters made between B's read and C's look, with a pipe read out or not.
  auto enters_after_read = [&](bool eager, bool pipe_read_out) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    io::File r(fds[0]), w(fds[1]);
    weft::RuntimeOptions o = workers(1);
    o.lifo_slot = false;
    o.eager_file_submit = eager;
    weft::Runtime rt(o);
    struct Shared {
      weft::Runtime* rt;
      const std::string* path;
      io::File* r;
      io::File* w;
      std::uint64_t before = 0, after = 0;
      std::uint64_t enters() const { return rt->metrics().workers[0].enter_calls; }
    } sh{&rt, &path, &r, &w};
    rt.block_on([](Shared* s, bool out) -> Task<void> {
      weft::JoinHandle<void> reader;
      if (out) {
        reader = weft::spawn([](io::File* f) -> Task<void> {
          char b[4];
          co_await f->read(b);
        }(s->r));
        // The reader's read is submitted with this tick; after the yield
        // it is out, held by the kernel until the pipe has data.
        co_await weft::yield_now();
      }
      io::File file = co_await io::File::open(*s->path, O_RDONLY);
      auto b = weft::spawn([](Shared* sb, io::File* f) -> Task<void> {
        char buf[64];
        sb->before = sb->enters();
        co_await f->read_at(buf, 0);
      }(s, &file));
      auto c = weft::spawn([](Shared* sc) -> Task<void> {
        sc->after = sc->enters();
        co_return;
      }(s));
      co_await b;
      co_await c;
      if (out) {
        co_await s->w->write("x");
        co_await reader;
      }
    }(&sh, pipe_read_out));
    return sh.after - sh.before;
  };
  CHECK(enters_after_read(true, true) == 1);
  CHECK(enters_after_read(false, true) == 0);
  CHECK(enters_after_read(true, false) == 0);
}
