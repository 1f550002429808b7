// errors.cpp - the errno -> exception mapping of weft/io/errors.hpp, and the
// helpers shared by every operation (timeouts, deadlines).
#include <cerrno>
#include <cstring>
#include <string>
#include <weft/errors.hpp>
#include <weft/io/errors.hpp>
#include <weft/io/op.hpp>

namespace weft::io {

namespace {
class IoCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "weft.io"; }
  std::string message(int c) const override {
    switch (static_cast<Errc>(c)) {
      case Errc::eof:
        return "end of file";
    }
    return "unknown weft.io error";
  }
};
}  // namespace

const std::error_category& error_category() noexcept {
  static const IoCategory cat;
  return cat;
}

void throw_error(int err, const char* op) {
  switch (err) {
    case ECONNRESET:
      throw ConnectionResetError(err, op);
    case EPIPE:
      throw BrokenPipeError(err, op);
    case ECONNREFUSED:
      throw ConnectionRefusedError(err, op);
    case ECONNABORTED:
      throw ConnectionError(err, op);
    case ETIMEDOUT:
      // Python maps ETIMEDOUT to TimeoutError; so does weft (see errors.hpp).
      throw TimeoutError(std::string(op) + ": " + std::strerror(err));
    default:
      throw std::system_error(err, std::system_category(), op);
  }
}

void throw_timeout(const char* op) { throw TimeoutError(std::string(op) + ": timed out"); }

namespace detail {

void arm_timeout(weft::detail::IoOpState& st, const OpTimeout& t, const char* op) {
  if (!t) return;
  if (t->count() < 0)
    throw ValueError(std::string("weft::io::") + op + ": negative timeout (" +
                     std::to_string(t->count()) + " ns)");
  weft::detail::set_timeout(&st, t->count());
}

Deadline Deadline::after(const OpTimeout& t, const char* op) {
  Deadline d;
  if (!t) return d;
  if (t->count() < 0)
    throw ValueError(std::string("weft::io::") + op + ": negative timeout (" +
                     std::to_string(t->count()) + " ns)");
  d.set = true;
  d.at = std::chrono::steady_clock::now() + *t;
  return d;
}

}  // namespace detail
}  // namespace weft::io
