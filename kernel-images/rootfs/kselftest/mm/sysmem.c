// SPDX-License-Identifier: GPL-2.0
/*
 * The rest of a process's memory interface, with and without an MMU: mprotect, msync, madvise,
 * mlock and mincore (MMU-only code: ENOSYS without an MMU, kernel/sys_ni.c), brk, System V and
 * POSIX shared memory (both supported without an MMU, nommu-mmap.rst, through ramfs-backed
 * shmem), memfd, /proc/self/maps (fs/proc/task_nommu.c without an MMU), /proc/self/smaps (MMU
 * only: CONFIG_PROC_PAGE_MONITOR), and reading one's own memory through /proc/self/mem. Run on
 * both kernels; each case checks the behaviour of the kernel it finds itself on.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include "mm-util.h"

static int mmu;

/* A system call's errno, 0 on success. */
static int err_of(long ret)
{
	return ret < 0 ? errno : 0;
}

/*
 * The calls only mm/mprotect.c, msync.c, madvise.c, mlock.c and mincore.c implement (all built
 * only with CONFIG_MMU): with an MMU
 * they work on an anonymous mapping (and MADV_DONTNEED zeroes it); without one they are ENOSYS.
 */
static void mmu_only_calls(void)
{
	char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char vec[2];
	int e[6], want = mmu ? 0 : ENOSYS, ok = 1;

	if (p == MAP_FAILED) {
		ksft_test_result_fail("mprotect, msync, madvise, mlock, mincore: %s\n", strerror(errno));
		return;
	}
	memset(p, 1, 2 * PAGE);
	e[0] = err_of(mprotect(p, PAGE, PROT_READ));
	e[1] = err_of(msync(p, 2 * PAGE, MS_SYNC));
	e[2] = err_of(madvise(p + PAGE, PAGE, MADV_DONTNEED));
	e[3] = err_of(mlock(p, PAGE));
	e[4] = err_of(munlock(p, PAGE));
	e[5] = err_of(mincore(p, 2 * PAGE, vec));
	for (int i = 0; i < 6; i++)
		ok = ok && e[i] == want;
	if (mmu)
		ok = ok && all_bytes(p + PAGE, PAGE, 0) && all_bytes(p, PAGE, 1);
	ksft_print_msg("mprotect %d, msync %d, madvise %d, mlock %d, munlock %d, mincore %d\n", e[0], e[1], e[2], e[3], e[4], e[5]);
	munmap(p, 2 * PAGE);
	ksft_test_result(ok, "mprotect, msync, madvise(MADV_DONTNEED), mlock, munlock, mincore: %s\n", mmu ? "work" : "ENOSYS");
}

/* mprotect's own refusals with an MMU; without one there is nothing to refuse (ENOSYS). */
static void mprotect_refusals(void)
{
	char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int mis, unmapped;

	if (p == MAP_FAILED) {
		ksft_test_result_fail("mprotect refusals: %s\n", strerror(errno));
		return;
	}
	mis = err_of(mprotect(p + 1, PAGE, PROT_READ));
	munmap(p, PAGE);
	unmapped = err_of(mprotect(p, PAGE, PROT_READ));
	ksft_print_msg("mprotect of a misaligned address: %d, of unmapped memory: %d\n", mis, unmapped);
	if (mmu)
		ksft_test_result(mis == EINVAL && unmapped == ENOMEM, "mprotect refuses a misaligned address (EINVAL) and unmapped memory (ENOMEM)\n");
	else
		ksft_test_result(mis == ENOSYS && unmapped == ENOSYS, "mprotect is ENOSYS whatever it is asked\n");
}

/*
 * brk: with an MMU it grows by pages (here by 2 pages, then 64 MiB) and shrinks back. Without
 * one, ELF-FDPIC gives a program a zero-size brk area (context.end_brk == start_brk,
 * fs/binfmt_elf_fdpic.c), so nommu's brk() refuses any growth and returns brk unchanged.
 */
static void brk_heap(void)
{
	uintptr_t cur = syscall(SYS_brk, 0);
	uintptr_t grown = syscall(SYS_brk, cur + 2 * PAGE);
	uintptr_t big = syscall(SYS_brk, cur + (64UL << 20));
	uintptr_t back = syscall(SYS_brk, cur);
	int ok;

	ksft_print_msg("brk %#lx, +2 pages %#lx, +64 MiB %#lx, back %#lx\n", (unsigned long)cur, (unsigned long)grown,
		       (unsigned long)big, (unsigned long)back);
	if (mmu) {
		ok = grown == cur + 2 * PAGE && big == cur + (64UL << 20) && back == cur;
		ksft_test_result(ok, "brk grows by 2 pages, by 64 MiB, and shrinks back\n");
	} else {
		ok = grown == cur && big == cur && back == cur;
		ksft_test_result(ok, "brk cannot grow past the zero-size brk area of an ELF-FDPIC program: unchanged\n");
	}
}

/*
 * System V shared memory: a segment attached twice shows one set of bytes through both
 * attachments, IPC_STAT counts them, and each detaches on its own.
 */
static void sysv_shm(void)
{
	int id = shmget(IPC_PRIVATE, 3 * PAGE, IPC_CREAT | 0600);
	struct shmid_ds ds;
	char *a, *b;
	int ok, nattch = -1, da, db;

	if (id < 0) {
		ksft_test_result_fail("System V shm: shmget: %s\n", strerror(errno));
		return;
	}
	a = shmat(id, NULL, 0);
	b = shmat(id, NULL, 0);
	if (a == (void *)-1 || b == (void *)-1) {
		ksft_test_result_fail("System V shm: shmat: %s%s\n", strerror(errno), !mmu && errno == ENODEV ?
				      " [no-MMU bug: the segment's ramfs file has no pages (shmget only sets its size), so ramfs cannot map it directly and MAP_SHARED cannot copy]" : "");
		shmctl(id, IPC_RMID, NULL);
		return;
	}
	ok = all_bytes(a, 3 * PAGE, 0);
	memset(a + PAGE, 's', PAGE);
	ok = ok && all_bytes(b + PAGE, PAGE, 's');
	if (shmctl(id, IPC_STAT, &ds) == 0)
		nattch = ds.shm_nattch;
	ksft_print_msg("attached at %p and %p, shm_nattch %d\n", a, b, nattch);
	db = err_of(shmdt(b));
	da = err_of(shmdt(a));
	shmctl(id, IPC_RMID, NULL);
	ksft_test_result(ok && nattch == 2 && !da && !db, "System V shm: one segment attached twice, shared, counted, detached (%d, %d)%s\n",
			 db, da, !mmu && a == b && da ? " [known no-MMU bug: the second attachment replaced the first VMA]" : "");
}

/* System V shm refusals on both: a size under SHMMIN, shmat of an id that is not there, shmdt of no segment. */
static void sysv_shm_refusals(void)
{
	int big = err_of(shmget(IPC_PRIVATE, 0, IPC_CREAT | 0600));
	int none = shmat(-1, NULL, 0) == (void *)-1 ? errno : 0;
	int dt = err_of(shmdt((void *)PAGE));

	ksft_print_msg("shmget of 0 bytes: %d, shmat(-1): %d, shmdt of no segment: %d\n", big, none, dt);
	ksft_test_result(big == EINVAL && none == EINVAL && dt == EINVAL, "System V shm refuses an empty segment, a bad id and a bad detach (EINVAL)\n");
}

/*
 * POSIX shared memory: a file on the tmpfs at /dev/shm (init mounts it), sized with ftruncate,
 * mapped shared: what one mapping writes, a second mapping and read() see.
 */
static void posix_shm(void)
{
	static const char path[] = "/dev/shm/nommu-ci-mm";
	int fd, ok;
	char *a, *b, c = 0;

	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, 2 * PAGE)) {
		ksft_test_result_fail("POSIX shm on /dev/shm: %s\n", strerror(errno));
		return;
	}
	a = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	b = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, PAGE);
	if (a == MAP_FAILED || b == MAP_FAILED) {
		ksft_test_result_fail("POSIX shm on /dev/shm: mmap: %s\n", strerror(errno));
		close(fd);
		unlink(path);
		return;
	}
	memset(a + PAGE, 'p', PAGE);
	ok = all_bytes(b, PAGE, 'p') && pread(fd, &c, 1, PAGE) == 1 && c == 'p';
	ok = ok && !munmap(b, PAGE) && !munmap(a, 2 * PAGE);
	close(fd);
	ok = ok && !unlink(path);
	ksft_test_result(ok, "POSIX shm on /dev/shm: two shared mappings at different offsets and read() agree\n");
}

/*
 * memfd: the same through an unnamed shmem file. memfd_create() needs CONFIG_MEMFD_CREATE, which
 * only tmpfs selects, and tmpfs needs an MMU: without one it is ENOSYS.
 */
static void memfd(void)
{
	int fd = memfd_create("nommu-ci-mm", 0);
	char *p;
	char c = 0;
	int ok;

	if (!mmu) {
		ksft_test_result(fd < 0 && errno == ENOSYS, "memfd_create is ENOSYS without tmpfs (errno %d)\n", fd < 0 ? errno : 0);
		return;
	}
	if (fd < 0 || ftruncate(fd, PAGE)) {
		ksft_test_result_fail("memfd: %s\n", strerror(errno));
		return;
	}
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		ksft_test_result_fail("memfd: mmap: %s\n", strerror(errno));
		close(fd);
		return;
	}
	p[100] = 'f';
	ok = pread(fd, &c, 1, 100) == 1 && c == 'f' && !munmap(p, PAGE);
	close(fd);
	ksft_test_result(ok, "memfd: a shared mapping writes the file\n");
}

/*
 * The line of /proc/self/maps whose range contains `addr`, into line; 0 if there is none. Read
 * with read() into a static buffer: stdio's malloc() could map memory at the very address that
 * was just unmapped (no-MMU hands out the same block again).
 */
static int maps_line(const void *addr, char *line, size_t len)
{
	static char buf[64 << 10];
	unsigned long lo, hi;
	ssize_t n, got = 0;
	int fd = open("/proc/self/maps", O_RDONLY);

	if (fd < 0)
		return 0;
	while (got < (ssize_t)sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += n;
	close(fd);
	buf[got] = 0;
	for (char *l = buf, *end; *l; l = end + 1) {
		end = strchrnul(l, '\n');
		if (sscanf(l, "%lx-%lx", &lo, &hi) == 2 && lo <= (uintptr_t)addr && (uintptr_t)addr < hi) {
			snprintf(line, len, "%.*s\n", (int)(end - l), l);
			return 1;
		}
		if (!*end)
			break;
	}
	return 0;
}

/*
 * /proc/self/maps lists an anonymous read/write mapping ("rw-p") and a file mapping naming its
 * file (without an MMU too: fs/proc/task_nommu.c), and stops listing them once unmapped.
 */
static void proc_maps(void)
{
	static const char path[] = "/tmp/nommu-ci-mm-maps";
	char *anon = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = make_file(path, 1);
	char *file = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	char la[512] = "", lf[512] = "";
	int ok;

	close(fd);
	if (anon == MAP_FAILED || file == MAP_FAILED) {
		ksft_test_result_fail("/proc/self/maps: %s\n", strerror(errno));
		return;
	}
	ok = maps_line(anon, la, sizeof(la)) && strstr(la, " rw-p ") && maps_line(file, lf, sizeof(lf)) && strstr(lf, path);
	ksft_print_msg("anonymous: %s", la);
	ksft_print_msg("file: %s", lf);
	munmap(anon, 2 * PAGE);
	munmap(file, PAGE);
	ok = ok && !maps_line(anon, la, sizeof(la)) && !maps_line(file, lf, sizeof(lf));
	unlink(path);
	ksft_test_result(ok, "/proc/self/maps lists an anonymous rw-p mapping and a file mapping by path, then neither once unmapped\n");
}

/* /proc/self/smaps: with an MMU it gives an anonymous mapping's Size and Rss; without one it does not exist. */
static void proc_smaps(void)
{
	char *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	FILE *f = fopen("/proc/self/smaps", "r");
	int err = f ? 0 : errno, in = 0, size = -1, rss = -1;
	unsigned long lo, hi;
	char line[512];

	if (p == MAP_FAILED) {
		ksft_test_result_fail("/proc/self/smaps: %s\n", strerror(errno));
		return;
	}
	memset(p, 1, 2 * PAGE);
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			in = lo == (uintptr_t)p;
		else if (in && !strncmp(line, "Size:", 5))
			size = atoi(line + 5);
		else if (in && !strncmp(line, "Rss:", 4))
			rss = atoi(line + 4);
	}
	if (f)
		fclose(f);
	munmap(p, 4 * PAGE);
	if (mmu)
		ksft_test_result(size == 16 && rss == 8, "/proc/self/smaps: a 4-page mapping with 2 pages touched is Size 16 kB, Rss 8 kB (%d, %d)\n",
				 size, rss);
	else
		ksft_test_result(err == ENOENT, "/proc/self/smaps does not exist without an MMU (errno %d)\n", err);
}

/* Reading one's own memory through /proc/self/mem (access_remote_vm) gives what is there; an unmapped address is EIO. */
static void proc_mem_read(void)
{
	char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open("/proc/self/mem", O_RDONLY);
	char buf[16] = "";
	int ok, err;

	if (p == MAP_FAILED || fd < 0) {
		ksft_test_result_fail("reading /proc/self/mem: %s\n", strerror(errno));
		return;
	}
	strcpy(p + 100, "nommu-ci");
	ok = pread(fd, buf, 9, (off_t)(uintptr_t)(p + 100)) == 9 && !strcmp(buf, "nommu-ci");
	munmap(p, PAGE);
	err = pread(fd, buf, 9, (off_t)(uintptr_t)(p + 100)) < 0 ? errno : 0;
	close(fd);
	ksft_test_result(ok && err == EIO, "/proc/self/mem reads a mapping's bytes; after munmap EIO (errno %d)\n", err);
}

/*
 * /proc/self/status accounts the process's memory: with an MMU in pages (VmSize grows by a
 * 1 MiB mapping); without one in bytes of the objects that back it (fs/proc/task_nommu.c: Mem,
 * Slack, Shared, sized with nommu's kobjsize()), and Mem grows by at least the mapping.
 */
static long status_value(const char *key)
{
	static char buf[8192];
	ssize_t n = 0, got = 0;
	int fd = open("/proc/self/status", O_RDONLY);
	char *at;

	if (fd < 0)
		return -1;
	while (got < (ssize_t)sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += n;
	close(fd);
	buf[got] = 0;
	at = strstr(buf, key);
	return at ? atol(at + strlen(key)) : -1;
}

static void proc_status(void)
{
	const char *key = mmu ? "VmSize:" : "Mem:";
	long before = status_value(key), after;
	char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		ksft_test_result_fail("/proc/self/status: %s\n", strerror(errno));
		return;
	}
	after = status_value(key);
	munmap(p, 1 << 20);
	ksft_print_msg("%s %ld before, %ld with a 1 MiB mapping; Slack: %ld\n", key, before, after, mmu ? -1 : status_value("Slack:"));
	if (mmu)
		ksft_test_result(before > 0 && after - before == 1024, "/proc/self/status: VmSize grows by 1024 kB with a 1 MiB mapping\n");
	else
		ksft_test_result(before > 0 && after - before >= (1 << 20) && status_value("Slack:") >= 0,
				 "/proc/self/status: Mem grows by at least 1 MiB (in bytes) with a 1 MiB mapping, Slack is there\n");
}

/* Many small mappings, each its own VMA, all unmapped again: the mm's tree grows and shrinks. */
static void many_mappings(void)
{
	enum { N = 256 };
	static char *maps[N];
	int made = 0, unmapped = 0;

	for (int i = 0; i < N; i++) {
		maps[i] = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (maps[i] == MAP_FAILED)
			break;
		maps[i][0] = i;
		made++;
	}
	for (int i = 0; i < made; i += 2)
		unmapped += !munmap(maps[i], PAGE) ? 1 : 0;
	for (int i = 1; i < made; i += 2)
		unmapped += maps[i][0] == (char)i && !munmap(maps[i], PAGE) ? 1 : 0;
	ksft_test_result(made == N && unmapped == N, "%d one-page mappings made and unmapped in two passes (%d, %d)\n", N, made, unmapped);
}

int main(void)
{
	mmu = kernel_has_mmu();
	ksft_print_header();
	ksft_print_msg("the kernel %s\n", mmu ? "has an MMU" : "has no MMU");
	ksft_set_plan(12);
	mmu_only_calls();
	mprotect_refusals();
	brk_heap();
	sysv_shm();
	sysv_shm_refusals();
	posix_shm();
	memfd();
	proc_maps();
	proc_smaps();
	proc_mem_read();
	proc_status();
	many_mappings();
	ksft_finished();
}
