// weft/exception_group.hpp - ExceptionGroup, what a failed TaskGroup raises.
//
// Python's ExceptionGroup bundles several exceptions raised concurrently. A
// TaskGroup whose children (or body) fail raises one holding exactly the real
// errors: children that ended cancelled contribute nothing (§K 77). A nested
// group's failure appears as a nested ExceptionGroup (§K 81).
//
// Threads: a plain value type; any thread may create, copy and throw it.
// Throws: the constructor throws std::bad_alloc only.
#pragma once

#include <exception>
#include <string>
#include <utility>
#include <vector>
#include <weft/errors.hpp>

namespace weft {

class ExceptionGroup : public Error {
 public:
  ExceptionGroup(std::string message, std::vector<std::exception_ptr> errors)
      : Error(message + " (" + std::to_string(errors.size()) + " sub-exception" +
              (errors.size() == 1 ? "" : "s") + ")"),
        message_(std::move(message)),
        errors_(std::move(errors)) {}

  /// The message without the count ("unhandled errors in a TaskGroup").
  const std::string& message() const noexcept { return message_; }
  /// The errors, in the order they happened (children first, then the body).
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return errors_; }

 private:
  std::string message_;
  std::vector<std::exception_ptr> errors_;
};

}  // namespace weft
