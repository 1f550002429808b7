// Configure-time probe run by cmake/WeftIoUringCheck.cmake.
//
// weft creates one ring per worker with IORING_SETUP_SINGLE_ISSUER and
// IORING_SETUP_DEFER_TASKRUN (DESIGN.md §2). This program does exactly that
// and pushes one NOP through the ring, so a machine that cannot run weft is
// told so when it configures, not when the first test hangs or aborts.
//
// Output contract (parsed by CMake): on failure the last line is
//   weft-io-uring-check: <step> failed: <ERRNO_NAME> (<errno>) <strerror>
// and the exit code is non-zero. On success it prints "ok" and exits 0.
#include <liburing.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace {

const char* errno_name(int err) {
  switch (err) {
    case ENOSYS:
      return "ENOSYS";
    case EPERM:
      return "EPERM";
    case EACCES:
      return "EACCES";
    case EINVAL:
      return "EINVAL";
    case ENOMEM:
      return "ENOMEM";
    case EMFILE:
      return "EMFILE";
    default:
      return "E?";
  }
}

int fail(const char* step, int err) {
  std::printf("weft-io-uring-check: %s failed: %s (%d) %s\n", step, errno_name(err), err,
              std::strerror(err));
  return 1;
}

}  // namespace

int main() {
  io_uring ring;
  io_uring_params params;
  std::memset(&params, 0, sizeof(params));
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;

  if (int rc = io_uring_queue_init_params(8, &ring, &params); rc < 0) {
    return fail("io_uring_queue_init_params", -rc);
  }

  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (sqe == nullptr) {
    io_uring_queue_exit(&ring);
    return fail("io_uring_get_sqe", EBUSY);
  }
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data64(sqe, 42);

  if (int rc = io_uring_submit_and_wait(&ring, 1); rc < 0) {
    io_uring_queue_exit(&ring);
    return fail("io_uring_submit_and_wait", -rc);
  }

  io_uring_cqe* cqe = nullptr;
  if (int rc = io_uring_wait_cqe(&ring, &cqe); rc < 0) {
    io_uring_queue_exit(&ring);
    return fail("io_uring_wait_cqe", -rc);
  }
  const bool good = io_uring_cqe_get_data64(cqe) == 42 && cqe->res == 0;
  const int res = cqe->res;
  io_uring_cqe_seen(&ring, cqe);
  io_uring_queue_exit(&ring);
  if (!good) {
    return fail("NOP completion", res < 0 ? -res : EINVAL);
  }

  std::printf("ok\n");
  return 0;
}
