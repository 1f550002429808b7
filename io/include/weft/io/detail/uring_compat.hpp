// weft/io/detail/uring_compat.hpp - uapi constants the kernels weft runs on
// have but liburing 2.3's copy of <linux/io_uring.h> predates (both from
// Linux 6.2). Values from the kernel's include/uapi/linux/io_uring.h.
#pragma once

#include <liburing.h>

#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif
