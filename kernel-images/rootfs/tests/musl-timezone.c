// SPDX-License-Identifier: GPL-2.0
/*
 * musl's gettimeofday() and settimeofday() ignore their struct timezone: gettimeofday() never
 * fills it in and settimeofday(NULL, tz) returns 0 without a system call, so the kernel's sys_tz
 * can be neither read nor set (timers/set-tz fails on any kernel). glibc passes it to the kernel.
 * Linked into every no-MMU kselftest program built against musl (toolchains.ts), these two make
 * the system calls as glibc does; the kernel is what the tests test.
 */
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	return syscall(SYS_gettimeofday, tv, tz);
}

int settimeofday(const struct timeval *tv, const struct timezone *tz)
{
	return syscall(SYS_settimeofday, tv, tz);
}
