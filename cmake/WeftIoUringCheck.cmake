# weft_check_io_uring()
#
# Compiles and runs cmake/check_io_uring.cpp, which sets up a ring the way weft
# does (SINGLE_ISSUER | DEFER_TASKRUN) and submits one NOP. On failure the
# configure stops with the most likely cause, because an io_uring runtime on a
# machine without usable io_uring fails later in ways that are much harder to
# read (tests hanging, EPERM deep inside a worker).
#
# Skipped when WEFT_SKIP_IO_URING_CHECK is ON, and (with a warning) when cross
# compiling without CMAKE_CROSSCOMPILING_EMULATOR. A success is cached in
# WEFT_IO_URING_CHECK_PASSED so reconfigures do not pay for the probe again;
# delete that cache entry (or the build dir) to re-run it.

function(weft_check_io_uring)
  if(WEFT_SKIP_IO_URING_CHECK)
    message(STATUS "weft: io_uring check skipped (WEFT_SKIP_IO_URING_CHECK=ON)")
    return()
  endif()
  if(WEFT_IO_URING_CHECK_PASSED)
    return()
  endif()
  if(CMAKE_CROSSCOMPILING AND NOT CMAKE_CROSSCOMPILING_EMULATOR)
    message(WARNING "weft: cross compiling without an emulator; io_uring check skipped. "
                    "Pass -DWEFT_SKIP_IO_URING_CHECK=ON to silence this.")
    return()
  endif()

  set(_dir "${CMAKE_CURRENT_BINARY_DIR}/weft_check_io_uring")
  try_run(_run_result _compile_result
    "${_dir}" "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/check_io_uring.cpp"
    CXX_STANDARD 20
    LINK_LIBRARIES PkgConfig::URING
    COMPILE_OUTPUT_VARIABLE _compile_output
    RUN_OUTPUT_VARIABLE _run_output)

  if(NOT _compile_result)
    message(FATAL_ERROR
      "weft: could not compile the io_uring probe (cmake/check_io_uring.cpp) against "
      "liburing. Is liburing-dev >= 2.3 installed (apt-get install liburing-dev)?\n"
      "Compiler output:\n${_compile_output}")
  endif()

  if("${_run_result}" STREQUAL "0")
    message(STATUS "weft: io_uring with SINGLE_ISSUER|DEFER_TASKRUN works")
    set(WEFT_IO_URING_CHECK_PASSED ON CACHE INTERNAL "io_uring probe succeeded")
    return()
  endif()

  # Work out the most likely reason, most specific first.
  string(STRIP "${_run_output}" _run_output)
  set(_causes "")

  set(_disabled_file "/proc/sys/kernel/io_uring_disabled")
  if(EXISTS "${_disabled_file}")
    file(READ "${_disabled_file}" _disabled)
    string(STRIP "${_disabled}" _disabled)
    if(NOT _disabled STREQUAL "0")
      string(CONCAT _cause
        "io_uring is disabled by the administrator: ${_disabled_file} is ${_disabled} "
        "(1 = only processes in the io_uring_group may use it, 2 = nobody may). "
        "Run `sysctl -w kernel.io_uring_disabled=0` as root.")
      list(APPEND _causes "${_cause}")
    endif()
  endif()

  # CMAKE_HOST_SYSTEM_VERSION is `uname -r`, e.g. 6.1.0-13-amd64.
  string(REGEX MATCH "^[0-9]+\\.[0-9]+" _kernel "${CMAKE_HOST_SYSTEM_VERSION}")
  if(_kernel AND _kernel VERSION_LESS "6.1")
    string(CONCAT _cause
      "the kernel is too old: uname -r is ${CMAKE_HOST_SYSTEM_VERSION}, and "
      "IORING_SETUP_DEFER_TASKRUN needs Linux 6.1 or newer (SINGLE_ISSUER needs 6.0). "
      "The kernel answers EINVAL for flags it does not know.")
    list(APPEND _causes "${_cause}")
  endif()

  if(_run_output MATCHES "ENOSYS|EPERM|EACCES")
    string(CONCAT _cause
      "the io_uring system calls are refused (${CMAKE_MATCH_0}). This is most often a "
      "seccomp filter: Docker's default profile and many CI sandboxes block io_uring. "
      "Run the container with a profile that allows io_uring_setup/io_uring_enter/"
      "io_uring_register (e.g. --security-opt seccomp=unconfined for a test), or "
      "check that the kernel is built with CONFIG_IO_URING.")
    list(APPEND _causes "${_cause}")
  elseif(_run_output MATCHES "ENOMEM")
    string(CONCAT _cause
      "the ring could not be allocated (ENOMEM): RLIMIT_MEMLOCK is probably tiny, "
      "raise it with `ulimit -l` (kernels before 5.12 charge rings to it).")
    list(APPEND _causes "${_cause}")
  endif()

  if(NOT _causes)
    set(_causes "unknown, see the probe output above.")
  endif()
  list(JOIN _causes "\n  - " _causes_text)
  message(FATAL_ERROR
    "weft: io_uring is not usable on this machine.\n"
    "Probe output: ${_run_output} (exit code ${_run_result})\n"
    "Likely cause:\n  - ${_causes_text}\n"
    "weft needs io_uring with IORING_SETUP_SINGLE_ISSUER|IORING_SETUP_DEFER_TASKRUN. "
    "To build anyway (e.g. cross compiling, or building on one machine to run on another), "
    "configure with -DWEFT_SKIP_IO_URING_CHECK=ON.")
endfunction()
