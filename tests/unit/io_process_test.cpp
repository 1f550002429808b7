// Subprocesses on the ring: create_subprocess_exec, Process (wait through a
// pidfd, terminate/kill/send_signal, communicate), the pipes, errors, no
// zombies and no leaked descriptors. The children are standard tools (cat,
// sh, sleep, true, head) found in PATH. fd_check.hpp fails the file if any
// test case leaks a descriptor (pipes, pidfds, the reaper's self-pipe).
#include "../support/fd_check.hpp"
// (fd_check.hpp first: it configures Catch)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <weft/io/errors.hpp>
#include <weft/io/process.hpp>
#include <weft/weft.hpp>

#include "../support/test_helpers.hpp"

using namespace std::chrono_literals;
using weft::io::ProcessOptions;
using weft::io::Stdio;
using weft_test::workers;

namespace {

ProcessOptions pipes(bool in, bool out, bool err) {
  ProcessOptions o;
  if (in) o.in = Stdio::pipe();
  if (out) o.out = Stdio::pipe();
  if (err) o.err = Stdio::pipe();
  return o;
}

// Runs `body` in a fresh runtime (the listener checks the descriptors).
template <class F>
void run_body(F body, unsigned n = 2) {
  weft::run(body(), workers(n));
}

}  // namespace

TEST_CASE("subprocess: echo through cat with communicate") {
  run_body([]() -> weft::Task<void> {
    weft::io::Process p = weft::io::create_subprocess_exec("cat", {}, pipes(true, true, true));
    CHECK(p.pid() > 0);
    CHECK_FALSE(p.returncode().has_value());
    auto [out, err] = co_await p.communicate("hello, weft\n");
    CHECK(out == "hello, weft\n");
    CHECK(err.empty());
    REQUIRE(p.returncode().has_value());
    CHECK(*p.returncode() == 0);
  });
}

TEST_CASE("subprocess: echo through cat with the pipes by hand (write_all, close, read)") {
  run_body([]() -> weft::Task<void> {
    weft::io::Process p = weft::io::create_subprocess_exec("cat", {}, pipes(true, true, false));
    REQUIRE(p.stdin_pipe() != nullptr);
    REQUIRE(p.stdout_pipe() != nullptr);
    CHECK(p.stderr_pipe() == nullptr);
    co_await p.stdin_pipe()->write_all("abc");
    std::string first = co_await p.stdout_pipe()->read(100);  // cat echoes as it reads
    CHECK(first == "abc");
    co_await p.stdin_pipe()->write_all("def");
    p.stdin_pipe()->close();
    std::string rest = co_await p.stdout_pipe()->read_to_end();
    CHECK(rest == "def");
    std::string eof = co_await p.stdout_pipe()->read(10);
    CHECK(eof.empty());
    CHECK(co_await p.wait() == 0);
  });
}

TEST_CASE("subprocess: communicate moves several MB each way without deadlock") {
  run_body([]() -> weft::Task<void> {
    // 8 MiB in through cat and out again, plus 3 MB on stderr: every pipe is
    // far past its 64 KiB capacity, so writing stdin while not draining
    // stdout/stderr would deadlock.
    std::string input(8u << 20, '\0');
    for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<char>('a' + i % 23);
    weft::io::Process p = weft::io::create_subprocess_exec(
        "sh", {"-c", "cat; head -c 3000000 /dev/zero >&2"}, pipes(true, true, true));
    auto [out, err] = co_await p.communicate(input);
    CHECK(out.size() == input.size());
    CHECK(out == input);
    CHECK(err.size() == 3000000u);
    CHECK(err.find_first_not_of('\0') == std::string::npos);
    CHECK(*p.returncode() == 0);
  });
}

TEST_CASE("subprocess: exit codes come back from wait") {
  run_body([]() -> weft::Task<void> {
    weft::io::Process t = weft::io::create_subprocess_exec("true", {});
    CHECK(co_await t.wait() == 0);
    weft::io::Process f = weft::io::create_subprocess_exec("false", {});
    CHECK(co_await f.wait() == 1);
    weft::io::Process s = weft::io::create_subprocess_exec("sh", {"-c", "exit 42"});
    CHECK(co_await s.wait() == 42);
    CHECK(*s.returncode() == 42);
    CHECK(co_await s.wait() == 42);  // waiting again returns the same code
  });
}

TEST_CASE("subprocess: terminate, kill and send_signal give -signo as returncode") {
  run_body([]() -> weft::Task<void> {
    weft::io::Process a = weft::io::create_subprocess_exec("sleep", {"1000"});
    a.terminate();
    CHECK(co_await a.wait() == -SIGTERM);
    weft::io::Process b = weft::io::create_subprocess_exec("sleep", {"1000"});
    b.kill();
    CHECK(co_await b.wait() == -SIGKILL);
    weft::io::Process c = weft::io::create_subprocess_exec("sleep", {"1000"});
    c.send_signal(SIGUSR1);
    CHECK(co_await c.wait() == -SIGUSR1);
    c.kill();  // after reaping: nothing to do, no error
    CHECK(*c.returncode() == -SIGUSR1);
    CHECK_THROWS_AS(c.send_signal(-1), weft::ValueError);
  });
}

TEST_CASE("subprocess: several tasks wait for one child at once") {
  run_body([]() -> weft::Task<void> {
    weft::io::Process p = weft::io::create_subprocess_exec("sleep", {"1000"});
    auto w1 = weft::spawn(p.wait());
    auto w2 = weft::spawn(p.wait());
    co_await weft::yield_now();
    p.kill();
    CHECK(co_await w1 == -SIGKILL);
    CHECK(co_await w2 == -SIGKILL);
  });
}

TEST_CASE("subprocess: a wait cancelled (by a timeout and by cancel) can be waited again") {
  run_body([]() -> weft::Task<void> {
    weft::io::Process p = weft::io::create_subprocess_exec("sleep", {"1000"});
    // A timeout cancels the wait while its pidfd poll is in flight.
    auto w = p.wait();
    CHECK_THROWS_AS(co_await weft::wait_for(std::move(w), 20ms), weft::TimeoutError);
    CHECK_FALSE(p.returncode().has_value());
    // And a plain cancel of a spawned wait.
    auto h = weft::spawn(p.wait());
    co_await weft::sleep(5ms);
    h.cancel();
    CHECK_THROWS_AS(co_await h, weft::CancelledError);
    CHECK(h.cancelled());
    CHECK_FALSE(p.returncode().has_value());
    p.kill();
    CHECK(co_await p.wait() == -SIGKILL);
  });
}

TEST_CASE("subprocess: a program that does not exist raises system_error ENOENT naming it") {
  try {
    weft::io::create_subprocess_exec("weft-no-such-program-xyz", {"a"});
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ENOENT);
    CHECK_THAT(e.what(), Catch::Contains("weft-no-such-program-xyz"));
  }
  CHECK_THROWS_AS(weft::io::create_subprocess_exec("/nonexistent/dir/prog", {}), std::system_error);
  // Pipes made for a child that could not start are closed again.
  CHECK_THROWS_AS(
      weft::io::create_subprocess_exec("weft-no-such-program-xyz", {}, pipes(true, true, true)),
      std::system_error);
}

TEST_CASE("subprocess: bad arguments raise ValueError naming what is wrong") {
  using weft::io::create_subprocess_exec;
  CHECK_THROWS_AS(create_subprocess_exec("", {}), weft::ValueError);
  CHECK_THROWS_WITH(create_subprocess_exec("echo", {"ok", std::string("a\0b", 3)}),
                    Catch::Contains("argument 2"));
  ProcessOptions o;
  o.out = Stdio::to_stdout();
  CHECK_THROWS_WITH(create_subprocess_exec("true", {}, o), Catch::Contains("stdout"));
  ProcessOptions o2;
  o2.in = Stdio::from_fd(-1);
  CHECK_THROWS_AS(create_subprocess_exec("true", {}, o2), weft::ValueError);
  ProcessOptions o3;
  o3.cwd = std::string("/tm\0p", 5);
  CHECK_THROWS_WITH(create_subprocess_exec("true", {}, o3), Catch::Contains("cwd"));
}

TEST_CASE("subprocess: communicate with input but no stdin pipe raises ValueError") {
  run_body([]() -> weft::Task<void> {
    weft::io::Process p = weft::io::create_subprocess_exec("true", {});
    CHECK_THROWS_AS(co_await p.communicate("x"), weft::ValueError);
    CHECK(co_await p.wait() == 0);
  });
}

TEST_CASE("subprocess: stderr to stdout, DEVNULL, a descriptor of ours, env and cwd") {
  run_body([]() -> weft::Task<void> {
    ProcessOptions o = pipes(false, true, false);
    o.err = Stdio::to_stdout();
    weft::io::Process a =
        weft::io::create_subprocess_exec("sh", {"-c", "echo out; echo err >&2"}, o);
    auto [out, err] = co_await a.communicate();
    CHECK(out == "out\nerr\n");
    CHECK(err.empty());

    ProcessOptions d;
    d.in = Stdio::devnull();
    d.out = Stdio::pipe();
    d.err = Stdio::devnull();
    weft::io::Process b = weft::io::create_subprocess_exec("sh", {"-c", "cat; echo gone >&2"}, d);
    auto [out2, err2] = co_await b.communicate();
    CHECK(out2.empty());  // cat read end of file from /dev/null at once
    CHECK(*b.returncode() == 0);

    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    ProcessOptions f;
    f.out = Stdio::from_fd(p[1]);
    weft::io::Process c = weft::io::create_subprocess_exec("sh", {"-c", "printf mine"}, f);
    ::close(p[1]);  // still ours to close; the child has its own copy
    CHECK(co_await c.wait() == 0);
    char buf[16] = {};
    CHECK(::read(p[0], buf, sizeof buf) == 4);
    CHECK(std::string(buf) == "mine");
    ::close(p[0]);

    ProcessOptions e = pipes(false, true, false);
    e.env.emplace();
    e.env->push_back("WEFT_TEST_VAR=forty-two");
    e.cwd.assign(1, '/');  // (assigning "/" trips a g++ 12 -Wrestrict false positive)
    weft::io::Process g =
        weft::io::create_subprocess_exec("sh", {"-c", "echo $WEFT_TEST_VAR; pwd"}, e);
    auto [out3, err3] = co_await g.communicate();
    CHECK(out3 == "forty-two\n/\n");
  });
}

TEST_CASE(
    "subprocess: writing to a child that exited raises io::BrokenPipeError (EPIPE), not SIGPIPE") {
  run_body([]() -> weft::Task<void> {
    weft::io::Process p = weft::io::create_subprocess_exec("true", {}, pipes(true, false, false));
    const int rc = co_await p.wait();
    CHECK(rc == 0);
    std::string data(1 << 20, 'x');
    try {
      co_await p.stdin_pipe()->write_all(data);
      FAIL("no exception");
    } catch (const weft::io::BrokenPipeError& e) {
      CHECK(e.code().value() == EPIPE);
      CHECK_THAT(e.what(), Catch::StartsWith("weft::io::PipeWriter::write_all"));
    } catch (const std::system_error& e) {
      FAIL("a plain std::system_error, not io::BrokenPipeError: " << e.what());
    }
    // communicate() treats it as the child's choice, not an error.
    weft::io::Process q = weft::io::create_subprocess_exec("true", {}, pipes(true, true, false));
    auto [out, err] = co_await q.communicate(data);
    CHECK(out.empty());
    CHECK(*q.returncode() == 0);
  });
}

TEST_CASE(
    "pipes: a read error goes through io's errno mapping (ECONNRESET -> ConnectionResetError)") {
  // PipeReader reads any descriptor; a TCP reset (close with SO_LINGER 0) is
  // the one portable way to make a read fail with a mapped errno.
  int lst = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(lst >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  REQUIRE(::bind(lst, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(lst, 1) == 0);
  REQUIRE(::getsockname(lst, reinterpret_cast<sockaddr*>(&a), &alen) == 0);
  int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(client >= 0);
  REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  int server = ::accept4(lst, nullptr, nullptr, SOCK_CLOEXEC);
  REQUIRE(server >= 0);
  ::close(lst);
  linger reset{1, 0};
  REQUIRE(::setsockopt(server, SOL_SOCKET, SO_LINGER, &reset, sizeof reset) == 0);
  ::close(server);  // sends RST: the client's next read fails with ECONNRESET
  std::string what;
  int code = 0;
  bool reset_type = false;
  weft::run(
      [](int fd, std::string* w, int* c, bool* typed) -> weft::Task<void> {
        weft::io::PipeReader r(fd);  // owns (and closes) the client socket
        try {
          (void)co_await r.read(16);
        } catch (const weft::io::ConnectionResetError& e) {
          *typed = true;
          *w = e.what();
          *c = e.code().value();
        } catch (const std::system_error& e) {
          *w = e.what();
          *c = e.code().value();
        }
      }(client, &what, &code, &reset_type),
      workers(1));
  CHECK(code == ECONNRESET);
  CHECK(reset_type);
  CHECK_THAT(what, Catch::StartsWith("weft::io::PipeReader::read"));
}

TEST_CASE("subprocess: a Process destroyed without wait is reaped, no zombie left") {
  const std::set<int> fds_before = weft_test::open_fds();
  int pid = -1;
  weft::run(
      [](int* pid_out) -> weft::Task<void> {
        weft::io::Process p =
            weft::io::create_subprocess_exec("cat", {}, pipes(true, false, false));
        *pid_out = p.pid();
        co_return;  // ~Process closes cat's stdin: cat exits, the orphan reaper reaps it
      }(&pid),
      workers(1));
  REQUIRE(pid > 0);
  // Reaped means it is no longer our child: waitid reports ECHILD. The
  // reaper runs on its own thread, so this polls for the outcome (bounded).
  bool reaped = false;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    siginfo_t si{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
        errno == ECHILD) {
      reaped = true;
      break;
    }
    std::this_thread::sleep_for(1ms);
  }
  CHECK(reaped);
  // The reaper closes the child's pidfd just after reaping it, and its
  // self-pipe once it has no child left, on its own thread: poll (bounded)
  // until they are gone, so the listener's check sees the settled state.
  bool closed = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (weft_test::open_fds() == fds_before) {
      closed = true;
      break;
    }
    std::this_thread::sleep_for(1ms);
  }
  CHECK(closed);
}

TEST_CASE("subprocess: a child that already exited is reaped by the destructor itself") {
  run_body([]() -> weft::Task<void> {
    int pid = -1;
    {
      weft::io::Process p = weft::io::create_subprocess_exec("sh", {"-c", "exit 0"});
      pid = p.pid();
      // Wait for the exit without reaping (WNOWAIT; it blocks this worker
      // for the few milliseconds sh takes).
      siginfo_t si{};
      CHECK(::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT) == 0);
    }
    siginfo_t si{};
    CHECK(::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) < 0);
    CHECK(errno == ECHILD);
    co_return;
  });
}

TEST_CASE("subprocess: a Process moved to another variable keeps its child and pipes") {
  run_body([]() -> weft::Task<void> {
    weft::io::Process a = weft::io::create_subprocess_exec("cat", {}, pipes(true, true, false));
    weft::io::Process b = std::move(a);
    CHECK(a.pid() == -1);
    auto [out, err] = co_await b.communicate("moved");
    CHECK(out == "moved");
    CHECK_THROWS_AS(a.wait(), weft::RuntimeError);
  });
}

TEST_CASE("subprocess: the pipes as streams: readline from stdout while writing stdin") {
  run_body([]() -> weft::Task<void> {
    weft::io::Process p = weft::io::create_subprocess_exec("cat", {}, pipes(true, true, false));
    weft::io::StreamWriter in = p.take_stdin();
    weft::io::StreamReader out = p.take_stdout();
    CHECK(p.stdin_pipe() == nullptr);
    CHECK(p.stdout_pipe() == nullptr);
    CHECK_THROWS_AS(p.take_stdin(), weft::RuntimeError);
    CHECK_THROWS_AS(p.take_stderr(), weft::RuntimeError);  // not a pipe
    std::vector<std::string> lines;
    for (int i = 0; i < 3; ++i) {
      in.write("line " + std::to_string(i) + "\n");
      co_await in.drain();
      lines.push_back(co_await out.readline());
    }
    CHECK(lines == std::vector<std::string>{"line 0\n", "line 1\n", "line 2\n"});
    in.close();  // cat sees EOF on its stdin and exits
    co_await in.wait_closed();
    std::string rest = co_await out.read(-1);
    CHECK(rest.empty());
    CHECK(out.at_eof());
    int rc = co_await p.wait();
    CHECK(rc == 0);
  });
}

TEST_CASE(
    "subprocess: a stream writer to a child that exited raises BrokenPipeError, not SIGPIPE") {
  run_body([]() -> weft::Task<void> {
    weft::io::Process p = weft::io::create_subprocess_exec("true", {}, pipes(true, false, false));
    int rc = co_await p.wait();
    CHECK(rc == 0);
    weft::io::StreamWriter in = p.take_stdin();
    std::string block(1 << 16, 'x');
    bool broken = false;
    for (int i = 0; i < 100 && !broken; ++i) {
      in.write(block);
      try {
        co_await in.drain();
        co_await weft::yield_now();
      } catch (const weft::io::BrokenPipeError&) {
        broken = true;
      }
    }
    CHECK(broken);
  });
}
