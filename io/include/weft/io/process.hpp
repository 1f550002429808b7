// weft/io/process.hpp - asyncio's create_subprocess_exec and Process, with
// the child's exit and its pipes on the ring.
//
//   weft::io::ProcessOptions opts;
//   opts.in = weft::io::Stdio::pipe();
//   opts.out = weft::io::Stdio::pipe();
//   weft::io::Process p = weft::io::create_subprocess_exec("cat", {}, opts);
//   auto [out, err] = co_await p.communicate("hello");   // out == "hello"
//   int rc = *p.returncode();                              // 0
//
// # Spawning
// create_subprocess_exec starts the child with posix_spawnp (glibc's is a
// vfork-style clone: only the calling thread pauses, until the child has
// exec'd, and exec failures come back as errors) and opens a pidfd for it
// with pidfd_open. It returns the Process directly rather than an awaitable:
// nothing in it waits for the child, and returning a plain value keeps it
// clear of the g++ 12 co_await-temporary bug (README). The child starts with
// an empty signal mask (the runtime's threads block signals they handle, see
// signal.hpp) and with SIGPIPE and SIGXFSZ at their default action, as
// Python's subprocess does. Every descriptor weft opens is O_CLOEXEC, so the
// child inherits only its three standard streams (and descriptors you opened
// without O_CLOEXEC).
//
// # Waiting
// wait() polls the pidfd on the ring (IORING_OP_POLL_ADD: a pidfd becomes
// readable when the process exits) and then reaps with
// waitid(P_PIDFD, WNOHANG). This works from Linux 5.4 on; IORING_OP_WAITID
// would save the waitid call but needs 6.7, and weft supports 6.1. Several
// tasks may wait at once; cancelling one wait() leaves the others and the
// child alone, and wait() may be called again afterwards. returncode() is the
// exit status, or -N when signal N ended the child (asyncio's convention),
// or 255 if someone else reaped the child (SIGCHLD set to SIG_IGN, a
// waitpid(-1) elsewhere), as asyncio reports an unknown child.
//
// # No zombie left behind
// A Process destroyed before its child was reaped closes its pipes, reaps
// the child if it has already exited, and otherwise hands the pidfd to the
// orphan reaper: one process-wide thread, started on demand, that poll(2)s
// the pidfds it holds, reaps each child as it exits, and ends when it holds
// none (so an idle program has no extra thread). The child is not killed
// (Tokio's default; asyncio kills it when its transport is closed): call
// kill() first if you want it gone.
//
// # Pipes
// PipeReader / PipeWriter are minimal async byte pipes on the ring (read(n),
// write_all, close), to be wrapped in StreamReader/StreamWriter by the
// streams layer. A worker that writes to a pipe blocks SIGPIPE in its own
// thread first (once per thread), so a reader that went away is reported as
// io::BrokenPipeError (EPIPE) instead of killing the process; the SIGPIPE the
// kernel sends then stays pending, blocked, on that worker. The pipes' and
// wait()'s operations are weft::io's own (weft/io/op.hpp), so their failures
// map errno to exceptions as the sockets' do (weft/io/errors.hpp), with what()
// naming the method. They take no timeout: wrap them in weft::wait_for or a
// weft::timeout scope.
//
// Threads: create_subprocess_exec, pid, returncode, send_signal, terminate
// and kill may be called from any thread. wait, communicate and the pipes'
// read/write_all must be awaited in a weft task (RuntimeError otherwise).
// One task at a time may use each pipe; the Process must outlive every
// wait/communicate/read/write in flight on it (moving the Process is fine:
// its state does not move).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <weft/io/streams.hpp>
#include <weft/task.hpp>

namespace weft::io {

namespace detail {
struct ProcessState;
}

/// The read end of a pipe (a child's stdout or stderr).
class PipeReader {
 public:
  /// Takes ownership of `fd` (closed by close() or the destructor).
  explicit PipeReader(int fd) noexcept : fd_(fd) {}
  PipeReader(PipeReader&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  PipeReader& operator=(PipeReader&& o) noexcept;
  PipeReader(const PipeReader&) = delete;
  PipeReader& operator=(const PipeReader&) = delete;
  ~PipeReader() { close(); }

  /// Up to `n` bytes, at least one unless at end of file (then ""); n == 0
  /// gives "" at once. Throws what io::throw_error maps the errno to
  /// (weft/io/errors.hpp: ConnectionResetError for ECONNRESET, ...,
  /// std::system_error otherwise; what() begins "weft::io::PipeReader::read"),
  /// RuntimeError if closed or outside a task, CancelledError.
  Task<std::string> read(std::size_t n);
  /// Everything up to end of file. Same errors as read().
  Task<std::string> read_to_end();
  /// Closes the descriptor (idempotent). Must not race an operation in flight.
  void close() noexcept;
  int fd() const noexcept { return fd_; }
  /// Gives up ownership: returns the descriptor and leaves this closed.
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

/// The write end of a pipe (a child's stdin).
class PipeWriter {
 public:
  /// Takes ownership of `fd` (closed by close() or the destructor).
  explicit PipeWriter(int fd) noexcept : fd_(fd) {}
  PipeWriter(PipeWriter&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  PipeWriter& operator=(PipeWriter&& o) noexcept;
  PipeWriter(const PipeWriter&) = delete;
  PipeWriter& operator=(const PipeWriter&) = delete;
  ~PipeWriter() { close(); }

  /// Writes all of `data` (the caller keeps it alive until the await ends).
  /// Throws io::BrokenPipeError when the reader has gone (EPIPE), else what
  /// io::throw_error maps the errno to (weft/io/errors.hpp); what() begins
  /// "weft::io::PipeWriter::write_all". RuntimeError if closed or outside a
  /// task, CancelledError (some of the data may have been written).
  Task<void> write_all(std::string_view data);
  /// Closes the descriptor (the reader then sees end of file). Idempotent.
  /// Must not race an operation in flight.
  void close() noexcept;
  int fd() const noexcept { return fd_; }
  /// Gives up ownership: returns the descriptor and leaves this closed.
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

/// What a child's standard stream is connected to (asyncio's stdin=/stdout=/
/// stderr= arguments).
struct Stdio {
  enum class Kind { Inherit, Pipe, DevNull, Fd, Stdout };
  Kind kind = Kind::Inherit;
  int fd = -1;
  /// The parent's own stream (asyncio's None).
  static constexpr Stdio inherit() noexcept { return {Kind::Inherit, -1}; }
  /// A new pipe; the Process gets its other end (asyncio.subprocess.PIPE).
  static constexpr Stdio pipe() noexcept { return {Kind::Pipe, -1}; }
  /// /dev/null (asyncio.subprocess.DEVNULL).
  static constexpr Stdio devnull() noexcept { return {Kind::DevNull, -1}; }
  /// A descriptor of yours, duplicated into the child (it stays yours).
  static constexpr Stdio from_fd(int fd) noexcept { return {Kind::Fd, fd}; }
  /// For stderr only: wherever stdout goes (asyncio.subprocess.STDOUT).
  static constexpr Stdio to_stdout() noexcept { return {Kind::Stdout, -1}; }
};

struct ProcessOptions {
  Stdio in;   // the child's stdin
  Stdio out;  // the child's stdout
  Stdio err;  // the child's stderr
  /// Working directory of the child; empty = the parent's.
  std::string cwd;
  /// The child's whole environment ("NAME=value" each); unset = the parent's.
  std::optional<std::vector<std::string>> env;
};

/// asyncio.subprocess.Process. Move-only; see the header comment.
class Process {
 public:
  Process() noexcept;
  explicit Process(std::unique_ptr<detail::ProcessState> st) noexcept;
  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  /// Closes the pipes; reaps the child or hands it to the orphan reaper.
  ~Process();

  /// The child's process id. Any thread.
  int pid() const noexcept;
  /// The exit status once reaped (by wait() or communicate()), -N if killed
  /// by signal N; nullopt before. Any thread.
  std::optional<int> returncode() const noexcept;

  /// Waits for the child to exit and returns returncode(). Awaitable again
  /// after a cancel. Throws CancelledError, std::system_error if the pidfd
  /// cannot be polled, RuntimeError outside a task or on an empty Process.
  Task<int> wait();
  /// Sends signal `sig` through the pidfd (no risk of hitting a recycled
  /// pid); nothing once the child has been reaped. Throws ValueError for an
  /// invalid signal number, std::system_error for other failures, RuntimeError
  /// on an empty Process. Any thread.
  void send_signal(int sig);
  /// send_signal(SIGTERM).
  void terminate();
  /// send_signal(SIGKILL).
  void kill();

  /// The pipes, or null when that stream is not Stdio::pipe() (asyncio's
  /// proc.stdin / proc.stdout / proc.stderr).
  PipeWriter* stdin_pipe() noexcept;
  PipeReader* stdout_pipe() noexcept;
  PipeReader* stderr_pipe() noexcept;

  /// The pipes as asyncio streams (proc.stdin is a StreamWriter, proc.stdout
  /// and proc.stderr are StreamReaders): each call takes that pipe out of
  /// the Process (its *_pipe() is null afterwards, and communicate() treats
  /// it as not a pipe). Throws RuntimeError if the stream is not a pipe or
  /// was taken already; ValueError for limit <= 0. Any thread.
  StreamWriter take_stdin();
  StreamReader take_stdout(
      std::ptrdiff_t limit = static_cast<std::ptrdiff_t>(StreamReader::kDefaultLimit));
  StreamReader take_stderr(
      std::ptrdiff_t limit = static_cast<std::ptrdiff_t>(StreamReader::kDefaultLimit));

  /// asyncio's communicate(input): writes `input` to stdin and closes it
  /// (stdin is closed even if input is empty), reads stdout and stderr to
  /// their end, all concurrently (so a child that fills one pipe while we
  /// write the other cannot deadlock), then waits for the child. Returns
  /// {stdout bytes, stderr bytes}; a stream that is not a pipe gives "".
  /// A child that exits without reading its input is not an error (EPIPE on
  /// stdin is ignored, as asyncio does). `input` must stay alive until the
  /// await ends. Throws ValueError if input is not empty and stdin is not a
  /// pipe; ExceptionGroup holding the std::system_error of a failing pipe;
  /// CancelledError (the child keeps running; the pipe operations are
  /// cancelled and joined before the exception leaves).
  Task<std::pair<std::string, std::string>> communicate(std::string_view input = {});

 private:
  std::unique_ptr<detail::ProcessState> st_;
};

/// asyncio.create_subprocess_exec(program, *args, stdin=, stdout=, stderr=,
/// cwd=, env=): starts `program` (searched in PATH when it has no '/') with
/// argv = {program, args...}. Any thread; does not suspend.
/// Throws std::system_error with the errno of the failure and a message
/// naming the program (ENOENT: not found, EACCES: not executable, ...);
/// ValueError for an empty program, an argument, cwd or env entry containing
/// a NUL byte, Stdio::from_fd with a negative descriptor, or Stdio::to_stdout()
/// for anything but stderr.
Process create_subprocess_exec(const std::string& program, const std::vector<std::string>& args,
                               const ProcessOptions& options = {});

}  // namespace weft::io
