// weft/io/errors.hpp - how I/O failures are reported.
//
// Every failed operation throws a std::system_error (or a type derived from
// it) whose code() is the errno (std::system_category()) and whose what()
// begins with the operation's name: "recv: Connection reset by peer". The
// outcomes a program usually handles differently have types of their own,
// named after Python's OSError subclasses, so a handler can tell them apart
// without comparing error codes:
//
//   EndOfFileError          the peer closed (or the file ended) before an
//                           operation that needs more bytes got them
//                           (recv_exact, read_exact_at). code() is
//                           io::Errc::eof in io::error_category(). A plain
//                           recv/read reports end of file by returning 0,
//                           as the system calls do, and throws nothing.
//   ConnectionError         base of the three below (ECONNABORTED itself)
//     ConnectionResetError  ECONNRESET: the peer reset the connection
//       BrokenPipeError     EPIPE: writing after the peer went away. Unlike
//                           Python, BrokenPipeError derives from
//                           ConnectionResetError, because a send to a reset
//                           peer may report either errno depending on timing;
//                           `catch (ConnectionResetError&)` gets both.
//     ConnectionRefusedError ECONNREFUSED: nothing listens there
//   weft::TimeoutError      the operation's timeout expired (its linked
//                           timeout fired), or the kernel said ETIMEDOUT. Not
//                           a system_error: it is the same TimeoutError that
//                           wait_for and timeout() raise (Python's
//                           TimeoutError is one type for both as well).
//   weft::CancelledError    the task was cancelled while waiting (never a
//                           system_error, see weft/errors.hpp).
//
// Threads: plain value types; any thread may create, copy and throw them.
#pragma once

#include <string>
#include <system_error>
#include <weft/errors.hpp>

namespace weft::io {

/// weft's own I/O error codes (for conditions that have no errno).
enum class Errc { eof = 1 };

/// The category of io::Errc ("weft.io").
const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// End of file before the bytes an operation needed (see above).
class EndOfFileError : public std::system_error {
 public:
  explicit EndOfFileError(const std::string& op)
      : std::system_error(make_error_code(Errc::eof), op) {}
};

/// ConnectionError and its subclasses (see above). Constructed with the
/// errno and the operation's name.
class ConnectionError : public std::system_error {
 public:
  ConnectionError(int err, const std::string& op)
      : std::system_error(err, std::system_category(), op) {}
};
class ConnectionResetError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
class BrokenPipeError : public ConnectionResetError {
 public:
  using ConnectionResetError::ConnectionResetError;
};
class ConnectionRefusedError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};

/// Throws the exception that errno `err` from operation `op` maps to (see
/// the table above); std::system_error for every other errno.
[[noreturn]] void throw_error(int err, const char* op);
/// Throws weft::TimeoutError("<op>: timed out").
[[noreturn]] void throw_timeout(const char* op);

}  // namespace weft::io

template <>
struct std::is_error_code_enum<weft::io::Errc> : std::true_type {};
