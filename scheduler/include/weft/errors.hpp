// weft/errors.hpp - the exceptions weft raises, named after asyncio's.
//
// Every error derives from weft::Error (itself a std::runtime_error) except
// CancelledError. Like Python's CancelledError, which derives from
// BaseException since 3.8, it must not be swallowed by a handler written for
// ordinary failures: it derives from nothing in <stdexcept>, so neither
// `catch (const weft::Error&)` nor `catch (const std::exception&)` catches it.
// Catch it by name, or with `catch (...)`, and rethrow unless you mean to
// suppress the cancellation.
//
// Threads: these are plain value types; any thread may create, copy and throw
// them.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace weft {

/// Base of every weft error except CancelledError.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// asyncio.CancelledError: raised inside a task at the suspension point where
/// a cancellation request is delivered, and by result() of a cancelled task or
/// future. message() is the text given to cancel(msg), empty if none.
class CancelledError final {
 public:
  CancelledError() = default;
  explicit CancelledError(std::string message) : message_(std::move(message)) {}
  const std::string& message() const noexcept { return message_; }
  const char* what() const noexcept {
    return message_.empty() ? "CancelledError" : message_.c_str();
  }

 private:
  std::string message_;
};

/// asyncio.TimeoutError (the builtin TimeoutError since 3.11).
class TimeoutError : public Error {
 public:
  TimeoutError() : Error("TimeoutError") {}
  explicit TimeoutError(const std::string& what) : Error(what) {}
};

/// asyncio.InvalidStateError: result() of a pending future, set_result() twice.
class InvalidStateError : public Error {
 public:
  using Error::Error;
};

/// Python's RuntimeError: a call made in the wrong context (no running loop,
/// a closed runtime, run() from inside a worker, ...).
class RuntimeError : public Error {
 public:
  using Error::Error;
};

/// Python's ValueError: an argument with a bad value (a NaN delay, ...).
class ValueError : public Error {
 public:
  using Error::Error;
};

}  // namespace weft
