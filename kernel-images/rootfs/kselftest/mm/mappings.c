// SPDX-License-Identifier: GPL-2.0
/*
 * mmap(), munmap() and mremap() as mm/nommu.c implements them without an MMU, and as mm/mmap.c
 * does with one: the same program runs on both kernels and checks, case by case, the behaviour
 * Documentation/admin-guide/mm/nommu-mmap.rst documents for the kernel it finds itself on.
 *
 * Files: /tmp is tmpfs (shmem; on no-MMU, shmem is ramfs, which maps its files directly and
 * shares a MAP_SHARED mapping if the file's pages are contiguous, as after ftruncate of an empty
 * file); the working directory is the job's hostfs root, an ordinary regular file system that
 * no-MMU can only copy from (no MAP_SHARED).
 *
 * Cases that meet upstream no-MMU bugs (three known before, READ_IMPLIES_EXEC found here) fail,
 * naming the bug, rather than being bent to pass or hidden as expected failures (an XFAIL would
 * stay quiet about a fix, and our KTAP reader has no such state): a fixed kernel turns them
 * green, and a run compares them as still failing, not as regressions.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include "mm-util.h"

#define TMPFILE "/tmp/nommu-ci-mm-mappings"
#define HOSTFILE "nommu-ci-mm-hostfs-file"

static int mmu;

static void anon_private(void)
{
	char *p = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ok;

	if (p == MAP_FAILED) {
		ksft_test_result_fail("anonymous private mapping: %s\n", strerror(errno));
		return;
	}
	ok = ((uintptr_t)p % PAGE) == 0 && all_bytes(p, 3 * PAGE, 0);
	memset(p, 0x5a, 3 * PAGE);
	ok = ok && all_bytes(p, 3 * PAGE, 0x5a) && munmap(p, 3 * PAGE) == 0;
	ksft_test_result(ok, "anonymous private mapping: page aligned, zero-filled, writable, unmapped\n");
}

/* Without fork() there is nothing to share with: no-MMU makes it a private mapping. */
static void anon_shared(void)
{
	char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int ok;

	if (p == MAP_FAILED) {
		ksft_test_result_fail("anonymous shared mapping: %s\n", strerror(errno));
		return;
	}
	ok = all_bytes(p, 2 * PAGE, 0);
	memset(p, 1, 2 * PAGE);
	ok = ok && all_bytes(p, 2 * PAGE, 1) && munmap(p, 2 * PAGE) == 0;
	ksft_test_result(ok, "anonymous shared mapping: zero-filled, writable, unmapped\n");
}

/* Code copied into an anonymous read/write/exec mapping runs. */
static void anon_exec(void)
{
	static const unsigned char ret42[] = { 0xb8, 42, 0, 0, 0, 0xc3 }; /* mov $42,%eax; ret */
	unsigned char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int (*fn)(void);
	int got;

	if (p == MAP_FAILED) {
		ksft_test_result_fail("anonymous executable mapping: %s\n", strerror(errno));
		return;
	}
	memcpy(p, ret42, sizeof(ret42));
	__builtin___clear_cache((char *)p, (char *)p + sizeof(ret42));
	fn = (int (*)(void))p;
	got = fn();
	munmap(p, PAGE);
	ksft_test_result(got == 42, "anonymous executable mapping: copied code runs (returned %d)\n", got);
}

/* Requests every kernel refuses: no length, no mapping type, a length past the address space. */
static void bad_requests(void)
{
	int zero = map_errno(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	int type = map_errno(mmap(NULL, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0));
	int huge = map_errno(mmap(NULL, (size_t)-PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));

	ksft_print_msg("mmap of 0 bytes: errno %d, without MAP_PRIVATE/SHARED: errno %d, of 2^64 - 4096 bytes: errno %d\n", zero, type, huge);
	ksft_test_result(zero == EINVAL && type == EINVAL && huge == ENOMEM,
			 "mmap refuses a zero length and a missing mapping type (EINVAL), a length past the address space (ENOMEM)\n");
}

/*
 * nommu-mmap.rst: "Supplying MAP_FIXED or a requesting a particular mapping address will result
 * in an error." With an MMU, MAP_FIXED replaces what is at the address.
 */
static void map_fixed(void)
{
	char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *q;
	int err;

	if (p == MAP_FAILED) {
		ksft_test_result_fail("MAP_FIXED: no mapping to aim at: %s\n", strerror(errno));
		return;
	}
	p[PAGE] = 7;
	q = mmap(p + PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	err = map_errno(q);
	if (mmu)
		ksft_test_result(q == p + PAGE && p[PAGE] == 0, "MAP_FIXED replaces the page at the address (errno %d)\n", err);
	else
		ksft_test_result(err == EINVAL, "MAP_FIXED is refused with EINVAL (errno %d)\n", err);
	munmap(p, 2 * PAGE);
}

/*
 * Partial munmap of an anonymous mapping: a hole in the middle (no-MMU splits the VMA), then the
 * first page (shrinks it), then the rest; a range never mapped is EINVAL without an MMU, nothing
 * to do (0) with one.
 */
static void munmap_partial(void)
{
	char *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int mid, first, rest, again;

	if (p == MAP_FAILED) {
		ksft_test_result_fail("partial munmap: %s\n", strerror(errno));
		return;
	}
	memset(p, 3, 4 * PAGE);
	/* The last page (shrinks it from the end), then the middle of what is left (splits it). */
	mid = munmap(p + 3 * PAGE, PAGE) ? errno : 0;
	mid = mid ?: (munmap(p + PAGE, PAGE) ? errno : 0);
	first = munmap(p, PAGE) ? errno : 0;
	/* What is left must still be there and unchanged. */
	if (!all_bytes(p + 2 * PAGE, PAGE, 3))
		mid = -1;
	rest = munmap(p + 2 * PAGE, PAGE) ? errno : 0;
	again = munmap(p + 2 * PAGE, PAGE) ? errno : 0;
	ksft_print_msg("munmap last and middle page: %d, first page: %d, rest: %d, rest again: %d\n", mid, first, rest, again);
	ksft_test_result(!mid && !first && !rest && again == (mmu ? 0 : EINVAL),
			 "munmap of an anonymous mapping in parts; unmapping it again is %s\n", mmu ? "a no-op" : "EINVAL");
}

/* A misaligned or overlong munmap inside one anonymous mapping: EINVAL on both. */
static void munmap_bad(void)
{
	char *p = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int mis, zero;

	if (p == MAP_FAILED) {
		ksft_test_result_fail("munmap refusals: %s\n", strerror(errno));
		return;
	}
	mis = munmap(p + 1, PAGE) ? errno : 0;
	zero = munmap(p, 0) ? errno : 0;
	munmap(p, 2 * PAGE);
	ksft_test_result(mis == EINVAL && zero == EINVAL, "munmap of a misaligned address or of 0 bytes is EINVAL (%d, %d)\n", mis, zero);
}

/* A private read-only mapping of a file shows the file, from an offset, and what follows EOF is zero. */
static void file_private_read(void)
{
	int fd = make_file(TMPFILE, 3);
	char *p = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, PAGE);
	char *tail;
	int ok;

	if (p == MAP_FAILED) {
		ksft_test_result_fail("private read-only file mapping at an offset: %s\n", strerror(errno));
		close(fd);
		return;
	}
	ok = all_bytes(p, PAGE, 'b') && all_bytes(p + PAGE, PAGE, 'c');
	munmap(p, 2 * PAGE);
	/* Half a page of file: the rest of the page reads as zeroes. */
	if (ftruncate(fd, PAGE / 2))
		ok = 0;
	tail = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (tail == MAP_FAILED || !all_bytes(tail, PAGE / 2, 'a') || !all_bytes(tail + PAGE / 2, PAGE / 2, 0))
		ok = 0;
	if (tail != MAP_FAILED)
		munmap(tail, PAGE);
	close(fd);
	ksft_test_result(ok, "private read-only file mapping: pages from an offset, zeroes past EOF\n");
}

/* A private writable mapping is the program's copy: writes to it never reach the file. */
static void file_private_write(void)
{
	int fd = make_file(TMPFILE, 2);
	char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	int ok;

	if (p == MAP_FAILED) {
		ksft_test_result_fail("private writable file mapping: %s\n", strerror(errno));
		close(fd);
		return;
	}
	memset(p, 'z', PAGE);
	ok = all_bytes(p, PAGE, 'z') && file_byte(fd, 0) == 'a' && file_byte(fd, PAGE - 1) == 'a';
	munmap(p, 2 * PAGE);
	ok = ok && file_byte(fd, 0) == 'a';
	close(fd);
	ksft_test_result(ok, "private writable file mapping: writes stay in the mapping, the file keeps 'a'\n");
}

/*
 * MAP_SHARED of a memory-backed file (tmpfs) after ftruncate: writes through the mapping are
 * what read() sees and write() to the file shows in the mapping, on both kernels.
 */
static void file_shared_tmpfs(void)
{
	int fd;
	char *p;
	int ok;

	unlink(TMPFILE);
	fd = open(TMPFILE, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 2 * PAGE)) {
		ksft_test_result_fail("shared file mapping on tmpfs: %s\n", strerror(errno));
		return;
	}
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		ksft_test_result_fail("shared file mapping on tmpfs: %s\n", strerror(errno));
		close(fd);
		return;
	}
	memset(p + PAGE, 'm', PAGE);
	ok = file_byte(fd, PAGE) == 'm' && file_byte(fd, 2 * PAGE - 1) == 'm';
	if (pwrite(fd, "w", 1, 10) != 1 || p[10] != 'w')
		ok = 0;
	munmap(p, 2 * PAGE);
	close(fd);
	ksft_test_result(ok, "shared file mapping on tmpfs: mapping writes are read() by the file and back\n");
}

/*
 * A shared mapping pins a memory-backed file's pages: no-MMU refuses to truncate them away
 * (nommu_shrink_inode_mappings, ETXTBSY); with an MMU the truncate succeeds.
 */
static void truncate_shared(void)
{
	int fd, err;
	char *p;

	unlink(TMPFILE);
	fd = open(TMPFILE, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 2 * PAGE)) {
		ksft_test_result_fail("truncating a shared-mapped file: %s\n", strerror(errno));
		return;
	}
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		ksft_test_result_fail("truncating a shared-mapped file: mmap: %s\n", strerror(errno));
		close(fd);
		return;
	}
	err = ftruncate(fd, PAGE) ? errno : 0;
	munmap(p, 2 * PAGE);
	/* Unmapped, it shrinks on both. */
	if (!err || err == ETXTBSY)
		err = ftruncate(fd, PAGE) ? -errno : err;
	close(fd);
	ksft_test_result(err == (mmu ? 0 : ETXTBSY), "shrinking a tmpfs file under a shared mapping: %s (errno %d)\n",
			 mmu ? "allowed" : "ETXTBSY", err);
}

/*
 * An ordinary file system's file (hostfs): private mappings are copies on both kernels;
 * MAP_SHARED is "not supported" without an MMU (ENODEV), and works with one.
 */
static void file_shared_hostfs(void)
{
	int fd = make_file(HOSTFILE, 1);
	char *priv = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	char *shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int ok = priv != MAP_FAILED && all_bytes(priv, PAGE, 'a');
	int err = map_errno(shared);

	if (mmu && shared != MAP_FAILED) {
		shared[0] = 'h';
		ok = ok && msync(shared, PAGE, MS_SYNC) == 0 && file_byte(fd, 0) == 'h';
	}
	if (priv != MAP_FAILED)
		munmap(priv, PAGE);
	if (shared != MAP_FAILED)
		munmap(shared, PAGE);
	close(fd);
	unlink(HOSTFILE);
	ksft_test_result(ok && err == (mmu ? 0 : ENODEV), "hostfs file: private mapping copies it; shared mapping %s (errno %d)\n",
			 mmu ? "writes it" : "is ENODEV", err);
}

/* Permission refusals, the same on both: a write-only file, a shared writable map of a read-only fd, a pipe. */
static void file_refusals(void)
{
	int rw = make_file(TMPFILE, 1);
	int wo = open(TMPFILE, O_WRONLY);
	int ro = open(TMPFILE, O_RDONLY);
	int pfd[2];
	int e_wo, e_ro, e_pipe;

	close(rw);
	e_wo = map_errno(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, wo, 0));
	e_ro = map_errno(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0));
	if (pipe(pfd))
		ksft_exit_fail_msg("pipe: %s\n", strerror(errno));
	e_pipe = map_errno(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, pfd[0], 0));
	close(wo);
	close(ro);
	close(pfd[0]);
	close(pfd[1]);
	ksft_print_msg("write-only fd: errno %d, shared writable on read-only fd: errno %d, pipe: errno %d\n", e_wo, e_ro, e_pipe);
	ksft_test_result(e_wo == EACCES && e_ro == EACCES && e_pipe == ENODEV,
			 "mmap refuses a write-only fd and a shared writable read-only fd (EACCES), a pipe (ENODEV)\n");
}

/* No-MMU cannot split a file mapping: munmap of part of it is EINVAL. */
static void munmap_file_partial(void)
{
	int fd = make_file(TMPFILE, 2);
	char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	int part, whole;

	close(fd);
	if (p == MAP_FAILED) {
		ksft_test_result_fail("partial munmap of a file mapping: %s\n", strerror(errno));
		return;
	}
	part = munmap(p + PAGE, PAGE) ? errno : 0;
	whole = munmap(p, part ? 2 * PAGE : PAGE) ? errno : 0;
	ksft_test_result(part == (mmu ? 0 : EINVAL) && !whole, "munmap of half a file mapping: %s (errno %d), the rest: %d\n",
			 mmu ? "allowed" : "EINVAL", part, whole);
}

/*
 * mremap: shrink in place on both; grow back within what was first mapped (no-MMU keeps the
 * region); grow past it: no-MMU cannot (ENOMEM, even with MREMAP_MAYMOVE), an MMU moves it.
 */
static void mremap_anon(void)
{
	char *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *q, *r, *s;
	int ok, err;

	if (p == MAP_FAILED) {
		ksft_test_result_fail("mremap of an anonymous mapping: %s\n", strerror(errno));
		return;
	}
	memset(p, 9, 4 * PAGE);
	q = mremap(p, 4 * PAGE, 2 * PAGE, 0);
	r = q == p ? mremap(p, 2 * PAGE, 4 * PAGE, 0) : MAP_FAILED;
	ok = q == p && r == p && all_bytes(p, 2 * PAGE, 9);
	s = mremap(p, 4 * PAGE, 64 * PAGE, MREMAP_MAYMOVE);
	err = map_errno(s);
	if (mmu)
		ok = ok && s != MAP_FAILED && all_bytes(s, 2 * PAGE, 9);
	else
		ok = ok && err == ENOMEM;
	munmap(s != MAP_FAILED ? s : p, s != MAP_FAILED ? 64 * PAGE : 4 * PAGE);
	ksft_test_result(ok, "mremap shrinks in place and grows back; past the first size with MREMAP_MAYMOVE: %s (errno %d)\n",
			 mmu ? "moved" : "ENOMEM", err);
}

/*
 * mremap requests no-MMU refuses: not the exact size of a mapping (EINVAL), to another address
 * with MREMAP_FIXED (EINVAL), a shared mapping (EPERM). With an MMU all three work.
 */
static void mremap_refusals(void)
{
	char *a = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *dst = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd;
	char *sh;
	int e_len, e_fixed, e_shared;

	unlink(TMPFILE);
	fd = open(TMPFILE, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 2 * PAGE) || a == MAP_FAILED || dst == MAP_FAILED) {
		ksft_test_result_fail("mremap refusals: setup: %s\n", strerror(errno));
		return;
	}
	sh = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map_errno(mremap(a + 1, PAGE, PAGE, 0)) != EINVAL)
		e_len = -1;
	else
		e_len = map_errno(mremap(a, 3 * PAGE, 2 * PAGE, 0));
	if (mmu) /* Shrinking part of it left a hole: map the whole of it again. */
		a = mremap(a, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE);
	e_fixed = map_errno(mremap(a, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dst));
	e_shared = sh == MAP_FAILED ? -errno : map_errno(mremap(sh, 2 * PAGE, PAGE, 0));
	close(fd);
	ksft_print_msg("mremap of part of a mapping: errno %d, MREMAP_FIXED elsewhere: errno %d, shared file mapping: errno %d\n",
		       e_len, e_fixed, e_shared);
	if (mmu)
		ksft_test_result(!e_len && !e_fixed && !e_shared, "mremap of part of a mapping, MREMAP_FIXED and of a shared mapping all work\n");
	else
		ksft_test_result(e_len == EINVAL && e_fixed == EINVAL && e_shared == EPERM,
				 "mremap refuses part of a mapping and MREMAP_FIXED (EINVAL), a shared mapping (EPERM)\n");
}

/*
 * An anonymous mapping larger than the biggest block of contiguous pages (no-MMU backs it with
 * one, alloc_pages_exact(); 64 MiB on UML) is ENOMEM; with an MMU 128 MiB is nothing. A smaller
 * large one (8 MiB) works on both.
 */
static void large_anon(void)
{
	char *small = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *big = mmap(NULL, 128 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ok = small != MAP_FAILED;
	int err = map_errno(big);

	if (ok) {
		small[0] = small[(8 << 20) - 1] = 1;
		munmap(small, 8 << 20);
	}
	if (big != MAP_FAILED) {
		big[0] = big[(128 << 20) - 1] = 1;
		munmap(big, 128 << 20);
	}
	ksft_test_result(ok && err == (mmu ? 0 : ENOMEM), "8 MiB anonymous mapping works; 128 MiB %s (errno %d)\n",
			 mmu ? "works" : "is ENOMEM", err);
}

/* /dev/zero: MAP_SHARED needs a directly mappable device without an MMU (ENODEV); private is a zeroed copy. */
static void dev_zero(void)
{
	int fd = open("/dev/zero", O_RDWR);
	char *sh, *priv;
	int e_sh, e_priv;

	if (fd < 0) {
		ksft_test_result_fail("/dev/zero: %s\n", strerror(errno));
		return;
	}
	sh = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	e_sh = map_errno(sh);
	priv = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	e_priv = map_errno(priv);
	close(fd);
	if (sh != MAP_FAILED)
		munmap(sh, PAGE);
	if (priv != MAP_FAILED) {
		if (!all_bytes(priv, 2 * PAGE, 0))
			e_priv = -1;
		munmap(priv, 2 * PAGE);
	}
	ksft_test_result(e_sh == (mmu ? 0 : ENODEV) && e_priv == 0,
			 "/dev/zero: shared mapping %s (errno %d); private mapping is zeroes (errno %d)%s\n",
			 mmu ? "works" : "is ENODEV", e_sh, e_priv,
			 !mmu && e_priv == EINVAL ? " [known no-MMU bug: a private mapping of /dev/zero is EINVAL]" : "");
}


/* Code in a file, mapped private read/exec, runs: a tmpfs file (no-MMU maps the page cache directly) and a hostfs one (a copy). */
static void file_exec(void)
{
	static const unsigned char ret7[] = { 0xb8, 7, 0, 0, 0, 0xc3 }; /* mov $7,%eax; ret */
	static const char *const paths[] = { TMPFILE, HOSTFILE };
	int got[2] = { -1, -1 };

	for (int i = 0; i < 2; i++) {
		int fd = make_file(paths[i], 1);
		unsigned char *p;

		if (pwrite(fd, ret7, sizeof(ret7), 0) != (ssize_t)sizeof(ret7))
			ksft_exit_fail_msg("writing %s: %s\n", paths[i], strerror(errno));
		p = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
		close(fd);
		if (p == MAP_FAILED) {
			got[i] = -errno;
			continue;
		}
		got[i] = ((int (*)(void))p)();
		munmap(p, PAGE);
	}
	unlink(HOSTFILE);
	ksft_test_result(got[0] == 7 && got[1] == 7, "code in a tmpfs and a hostfs file, mapped read/exec, runs (%d, %d)\n", got[0], got[1]);
}

/*
 * A file offset past the largest file size: with an MMU, EOVERFLOW (file_mmap_ok()). Without one
 * nommu only checks that the page index does not wrap (which a 64-bit offset cannot make it do),
 * and reading the private copy from there fails: EINVAL. An unaligned offset is EINVAL on both.
 */
static void offset_overflow(void)
{
	int fd = make_file(TMPFILE, 1);
	off_t far = (off_t)(~0ULL >> 1) & ~(off_t)(PAGE - 1);
	int err = map_errno(mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, far));
	int err2 = map_errno(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 1));

	close(fd);
	ksft_test_result(err == (mmu ? EOVERFLOW : EINVAL) && err2 == EINVAL,
			 "mmap at an offset past the largest file size is %s (%d), at an unaligned one EINVAL (%d)\n",
			 mmu ? "EOVERFLOW" : "EINVAL", err, err2);
}

/*
 * READ_IMPLIES_EXEC: a PROT_READ mapping, anonymous or of a tmpfs file, becomes executable
 * ("r-xp" in /proc/self/maps). No-MMU bug: validate_mmap_request() adds PROT_EXEC to its own
 * copy of prot (a by-value argument), which do_mmap() never sees: the mappings stay "r--".
 */
static void read_implies_exec(void)
{
	int old = personality(0xffffffff);
	int fd = make_file(TMPFILE, 1);
	char *anon, *file;
	char la[256] = "", lf[256] = "";
	FILE *maps;
	char line[512];
	unsigned long lo, hi;

	if (old < 0 || personality(old | READ_IMPLIES_EXEC) < 0) {
		ksft_test_result_fail("READ_IMPLIES_EXEC: personality: %s\n", strerror(errno));
		close(fd);
		return;
	}
	anon = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	file = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	personality(old);
	close(fd);
	maps = fopen("/proc/self/maps", "r");
	while (maps && fgets(line, sizeof(line), maps)) {
		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		if (lo == (uintptr_t)anon)
			snprintf(la, sizeof(la), "%.4s", strchr(line, ' ') + 1);
		if (lo == (uintptr_t)file)
			snprintf(lf, sizeof(lf), "%.4s", strchr(line, ' ') + 1);
	}
	if (maps)
		fclose(maps);
	if (anon != MAP_FAILED)
		munmap(anon, PAGE);
	if (file != MAP_FAILED)
		munmap(file, PAGE);
	ksft_test_result(!strncmp(la, "r-x", 3) && !strncmp(lf, "r-x", 3),
			 "READ_IMPLIES_EXEC makes PROT_READ mappings executable: anonymous %s, file %s%s\n", la, lf,
			 !mmu && !strncmp(la, "r--", 3) ? " [no-MMU bug: validate_mmap_request() drops the PROT_EXEC it adds]" : "");
}

/*
 * vm.nr_trim_pages (no-MMU only): an anonymous mapping comes from a power-of-2 block of pages,
 * the excess freed when it is at least nr_trim_pages (0: never). MmapCopy in /proc/meminfo
 * counts what is kept: 3 pages kept with trimming, 4 without. With an MMU there is no such
 * sysctl.
 */
static long mmap_copy_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MmapCopy: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static int write_trim(const char *v)
{
	int fd = open("/proc/sys/vm/nr_trim_pages", O_WRONLY);
	int ok = fd >= 0 && write(fd, v, strlen(v)) == (ssize_t)strlen(v);

	if (fd >= 0)
		close(fd);
	return ok ? 0 : errno;
}

static void trim_pages(void)
{
	long kept[2] = { -1, -1 };
	int err;

	if (mmu) {
		err = access("/proc/sys/vm/nr_trim_pages", F_OK) ? errno : 0;
		ksft_test_result(err == ENOENT, "there is no vm.nr_trim_pages with an MMU (errno %d)\n", err);
		return;
	}
	for (int i = 0; i < 2; i++) {
		long before;
		char *p;

		if (write_trim(i ? "0" : "1"))
			break;
		before = mmap_copy_kb();
		p = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			break;
		kept[i] = mmap_copy_kb() - before;
		munmap(p, 3 * PAGE);
	}
	err = write_trim("1");
	ksft_test_result(kept[0] == 12 && kept[1] == 16 && !err,
			 "vm.nr_trim_pages: a 3-page mapping keeps 12 kB when trimmed, 16 kB with trimming off (%ld, %ld)\n", kept[0], kept[1]);
}

/* Truncating a file past the end of its shared mapping is allowed on both; the mapping stays. */
static void truncate_past_shared(void)
{
	int fd;
	char *p;
	int err;

	unlink(TMPFILE);
	fd = open(TMPFILE, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 3 * PAGE)) {
		ksft_test_result_fail("truncating past a shared mapping: %s\n", strerror(errno));
		return;
	}
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		ksft_test_result_fail("truncating past a shared mapping: mmap: %s\n", strerror(errno));
		close(fd);
		return;
	}
	err = ftruncate(fd, 2 * PAGE) ? errno : 0;
	p[0] = 't';
	err = err ?: (file_byte(fd, 0) == 't' ? 0 : -1);
	munmap(p, PAGE);
	close(fd);
	ksft_test_result(!err, "truncating a file past the end of its shared mapping: allowed, the mapping still writes it (%d)\n", err);
}

/*
 * A shared mapping of part of what another shared mapping of the file covers: the same bytes
 * (no-MMU: the same region, at an offset into it). Each is then unmapped on its own.
 */
static void shared_subset(void)
{
	int fd;
	char *whole, *part;
	int ok, ew, ep;

	unlink(TMPFILE);
	fd = open(TMPFILE, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 2 * PAGE)) {
		ksft_test_result_fail("a shared mapping inside another: %s\n", strerror(errno));
		return;
	}
	whole = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	part = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PAGE);
	close(fd);
	if (whole == MAP_FAILED || part == MAP_FAILED) {
		ksft_test_result_fail("a shared mapping inside another: mmap: %s\n", strerror(errno));
		return;
	}
	ksft_print_msg("whole at %p, its second page mapped at %p\n", whole, part);
	whole[PAGE + 1] = 'q';
	part[2] = 'r';
	ok = part[1] == 'q' && whole[PAGE + 2] == 'r';
	ep = munmap(part, PAGE) ? errno : 0;
	ew = munmap(whole, 2 * PAGE) ? errno : 0;
	ksft_test_result(ok && !ep && !ew, "a shared mapping of the second page of another: the same bytes, each unmapped on its own (%d, %d)%s\n",
			 ep, ew, !mmu && part == whole + PAGE && (ep || ew) ? " [no-MMU: the overlapping VMA replaced part of the other in the mm's tree]" : "");
}

/*
 * The same page of the same file mapped twice, read-only and private: no-MMU shares one region
 * between the two VMAs (same address). Each must stay unmappable on its own. Known no-MMU bug:
 * the second VMA replaces the first in the mm's tree, so after one munmap the other is EINVAL.
 */
static void same_range_twice(void)
{
	int fd = make_file(TMPFILE, 1);
	char *a = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	char *b = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	int ea, eb;

	close(fd);
	if (a == MAP_FAILED || b == MAP_FAILED) {
		ksft_test_result_fail("the same file range mapped twice: %s\n", strerror(errno));
		return;
	}
	ksft_print_msg("first mapping at %p, second at %p\n", a, b);
	eb = munmap(b, PAGE) ? errno : 0;
	ea = munmap(a, PAGE) ? errno : 0;
	ksft_test_result(!ea && !eb, "the same file range mapped twice: each munmap succeeds (%d, %d)%s\n", eb, ea,
			 !mmu && a == b && ea == EINVAL ? " [known no-MMU bug: the second VMA replaced the first]" : "");
}

/*
 * A write through /proc/self/mem into a private read-only file mapping must never reach the
 * file: without ptrace it is not forced (CONFIG_PROC_MEM_FORCE_PTRACE, the default), so an MMU
 * kernel refuses it (EIO); a forced one would change only the mapping's copy. Known no-MMU bug:
 * such a mapping of a tmpfs/ramfs file is the file's own page cache (direct mapping), nommu's
 * access_remote_vm() checks only VM_MAYWRITE, and the write lands in the file.
 */
static void proc_mem_write(void)
{
	int fd = make_file(TMPFILE, 1);
	char *p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	int mem = open("/proc/self/mem", O_RDWR);
	ssize_t w;
	int err, in_file;

	if (p == MAP_FAILED || mem < 0) {
		ksft_test_result_fail("write through /proc/self/mem: %s\n", strerror(errno));
		return;
	}
	w = pwrite(mem, "X", 1, (off_t)(uintptr_t)p);
	err = w < 0 ? errno : 0;
	in_file = file_byte(fd, 0) == 'X';
	ksft_print_msg("pwrite to /proc/self/mem: %zd (errno %d); the mapping has %c, the file %c\n", w, err, p[0], file_byte(fd, 0));
	munmap(p, PAGE);
	close(mem);
	close(fd);
	ksft_test_result(!in_file && (w == 1 ? 1 : err == EIO),
			 "a write through /proc/self/mem into a private read-only file mapping does not reach the file%s\n",
			 !mmu && in_file ? " [known no-MMU bug: the write reached the file]" : "");
}

int main(void)
{
	mmu = kernel_has_mmu();
	ksft_print_header();
	ksft_print_msg("the kernel %s\n", mmu ? "has an MMU" : "has no MMU");
	ksft_set_plan(26);
	anon_private();
	anon_shared();
	anon_exec();
	bad_requests();
	map_fixed();
	munmap_partial();
	munmap_bad();
	file_private_read();
	file_private_write();
	file_shared_tmpfs();
	truncate_shared();
	file_shared_hostfs();
	file_refusals();
	file_exec();
	offset_overflow();
	read_implies_exec();
	trim_pages();
	truncate_past_shared();
	munmap_file_partial();
	mremap_anon();
	mremap_refusals();
	large_anon();
	dev_zero();
	shared_subset();
	same_range_twice();
	proc_mem_write();
	unlink(TMPFILE);
	ksft_finished();
}
