/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What both nommu-ci/mm programs share: whether the kernel has an MMU, asked of the running
 * kernel (the same binary runs on both), and small file and mapping helpers.
 */
#ifndef NOMMU_CI_MM_UTIL_H
#define NOMMU_CI_MM_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "../../kselftest.h"

#define PAGE 4096UL

/*
 * 1 with an MMU, 0 without.  /proc/meminfo has a MmapCopy line only on a no-MMU kernel
 * (fs/proc/meminfo.c): a probe independent of every behaviour the programs test.
 */
static inline int kernel_has_mmu(void)
{
	char line[256];
	int mmu = 1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		ksft_exit_fail_msg("cannot read /proc/meminfo to tell MMU from no-MMU: %s\n", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "MmapCopy:", 9))
			mmu = 0;
	fclose(f);
	return mmu;
}

/* A new file of `pages` pages, page i filled with the byte 'a' + i; its fd, opened O_RDWR. */
static inline int make_file(const char *path, int pages)
{
	char buf[PAGE];
	int fd;

	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		ksft_exit_fail_msg("creating %s: %s\n", path, strerror(errno));
	for (int i = 0; i < pages; i++) {
		memset(buf, 'a' + i, sizeof(buf));
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			ksft_exit_fail_msg("writing %s: %s\n", path, strerror(errno));
	}
	return fd;
}

/* The byte at `off` of the file, read with pread (not through any mapping). */
static inline int file_byte(int fd, off_t off)
{
	unsigned char c;

	if (pread(fd, &c, 1, off) != 1)
		return -1;
	return c;
}

/* Every byte of [p, p + len) is c. */
static inline int all_bytes(const void *p, size_t len, int c)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i] != (unsigned char)c)
			return 0;
	return 1;
}

/* mmap's result as an errno: 0 for a mapping, else the error. */
static inline int map_errno(void *p)
{
	return p == MAP_FAILED ? errno : 0;
}

#endif
