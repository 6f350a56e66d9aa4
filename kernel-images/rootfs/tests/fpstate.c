// SPDX-License-Identifier: GPL-2.0
/*
 * fpstate: checks that a program's FP/SSE/AVX/AVX-512 registers and its TLS survive what a
 * kernel does underneath it: system calls, signal handlers that use the same registers,
 * another thread using them in between. On no-MMU UML a program shares the host thread and
 * its registers with the kernel, so each of these is a place where state can leak or be lost.
 * Also: a bad pointer kills only the program (SIGSEGV); fork() and clone() without CLONE_VM
 * either give the child a copy (MMU) or fail with EINVAL (no MMU), never shared memory; the
 * clocks work. Prints TAP.
 *
 * Build (musl, static-pie for no-MMU or static for MMU), no AVX code from the compiler:
 *   musl-gcc -O2 -mno-avx -static-pie -pthread -o fpstate fpstate.c
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum level { SSE, AVX, AVX512 };

/* Register images: 32 vector registers of 64 bytes, 8 mask registers, MXCSR, x87 control word. */
struct regs {
	uint8_t v[32][64] __attribute__((aligned(64)));
	uint64_t k[8];
	uint32_t mxcsr;
	uint16_t fcw;
};

static enum level level;
static int nvec, vsize;
static volatile sig_atomic_t handled;

static enum level detect(void)
{
	unsigned int a, b, c, d;
	uint32_t xcr0_lo, xcr0_hi;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX))
		return SSE;
	__asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
	if ((xcr0_lo & 0x6) != 0x6)
		return SSE;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX512F) && (xcr0_lo & 0xe0) == 0xe0)
		return AVX512;
	return AVX;
}

#define EACH16(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define EACH_HI(M) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) M(28) M(29) M(30) M(31)
#define EACH_K(M) M(1) M(2) M(3) M(4) M(5) M(6) M(7)

#define LD_X(n) "movdqu " #n "*64(%[in]), %%xmm" #n "\n"
#define ST_X(n) "movdqu %%xmm" #n ", " #n "*64(%[out])\n"
#define LD_Y(n) "vmovdqu " #n "*64(%[in]), %%ymm" #n "\n"
#define ST_Y(n) "vmovdqu %%ymm" #n ", " #n "*64(%[out])\n"
#define LD_Z(n) "vmovdqu64 " #n "*64(%[in]), %%zmm" #n "\n"
#define ST_Z(n) "vmovdqu64 %%zmm" #n ", " #n "*64(%[out])\n"
#define LD_K(n) "kmovq 2048+" #n "*8(%[in]), %%k" #n "\n"
#define ST_K(n) "kmovq %%k" #n ", 2048+" #n "*8(%[out])\n"

struct call {
	long nr, a0, a1;
};

/*
 * Loads every register from *in, makes `calls` system calls from ops[] without touching a
 * vector register, stores every register to *out.
 */
#define SYSCALL_LOOP \
	"xor %%r12, %%r12\n" \
	"1: cmp %[calls], %%r12\n" \
	"jae 2f\n" \
	"imul $24, %%r12, %%r8\n" \
	"mov (%[ops],%%r8), %%rax\n" \
	"mov 8(%[ops],%%r8), %%rdi\n" \
	"mov 16(%[ops],%%r8), %%rsi\n" \
	"syscall\n" \
	"inc %%r12\n" \
	"jmp 1b\n" \
	"2:\n"
#define OPERANDS \
	: : [in] "r"(in), [out] "r"(out), [calls] "r"(calls), [ops] "r"(ops) \
	: "rax", "rcx", "rdx", "rdi", "rsi", "r8", "r9", "r10", "r11", "r12", "memory", \
	  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
	  "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

static void run(const struct regs *in, struct regs *out, long calls, const struct call *ops)
{
	__asm__ volatile("ldmxcsr %0\n fldcw %1" : : "m"(in->mxcsr), "m"(in->fcw));
	switch (level) {
	case SSE:
		__asm__ volatile(EACH16(LD_X) SYSCALL_LOOP EACH16(ST_X) OPERANDS);
		break;
	case AVX:
		__asm__ volatile(EACH16(LD_Y) SYSCALL_LOOP EACH16(ST_Y) "vzeroupper\n" OPERANDS);
		break;
	case AVX512:
		__asm__ volatile(EACH16(LD_Z) EACH_HI(LD_Z) EACH_K(LD_K) SYSCALL_LOOP
				 EACH16(ST_Z) EACH_HI(ST_Z) EACH_K(ST_K) "vzeroupper\n" OPERANDS);
		break;
	}
	__asm__ volatile("stmxcsr %0\n fnstcw %1" : "=m"(out->mxcsr), "=m"(out->fcw));
	/* Back to the ABI's defaults before any C code does arithmetic. */
	__asm__ volatile("ldmxcsr %0\n fninit" : : "m"((uint32_t){ 0x1f80 }));
}

static void fill(struct regs *r, unsigned int seed)
{
	for (size_t i = 0; i < sizeof(r->v); i++)
		((uint8_t *)r->v)[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
	for (int i = 0; i < 8; i++)
		r->k[i] = 0x0123456789abcdefULL * (seed + i + 1);
	r->k[0] = 0;
	r->mxcsr = 0x1f80 | 0x6000;	/* round toward zero: not the default */
	r->fcw = 0x027f;		/* double precision: not the default */
}

/* What differs between what went in and what came out, as text; NULL if nothing. */
static const char *diff(const struct regs *in, const struct regs *out, char *buf, size_t n)
{
	for (int i = 0; i < nvec; i++)
		if (memcmp(in->v[i], out->v[i], vsize)) {
			snprintf(buf, n, "vector register %d changed", i);
			return buf;
		}
	for (int i = 1; level == AVX512 && i < 8; i++)
		if (in->k[i] != out->k[i]) {
			snprintf(buf, n, "mask register k%d changed", i);
			return buf;
		}
	if (in->mxcsr != out->mxcsr) {
		snprintf(buf, n, "MXCSR %#x became %#x", in->mxcsr, out->mxcsr);
		return buf;
	}
	if (in->fcw != out->fcw) {
		snprintf(buf, n, "x87 control word %#x became %#x", in->fcw, out->fcw);
		return buf;
	}
	return NULL;
}

/* A signal handler that uses every register the interrupted code had loaded. */
static void clobber(int sig)
{
	static struct regs junk, sink;
	(void)sig;
	fill(&junk, 0xdead);
	junk.mxcsr = 0x1f80;
	junk.fcw = 0x037f;
	run(&junk, &sink, 0, NULL);
	handled++;
}

#define CALLS 64

/* Runs CALLS system calls between load and store: getpid, sched_yield, and kill(self, sig). */
static const char *check(unsigned int seed, int with_signals, char *buf, size_t n)
{
	static __thread struct regs in, out;
	struct call ops[CALLS];
	pid_t pid = getpid();

	for (int i = 0; i < CALLS; i++) {
		ops[i] = (struct call){ i % 4 == 1 ? SYS_sched_yield : SYS_getpid, 0, 0 };
		if (with_signals && i % 8 == 3)
			ops[i] = (struct call){ SYS_kill, pid, SIGUSR1 };
	}
	fill(&in, seed);
	memset(&out, 0, sizeof(out));
	run(&in, &out, CALLS, ops);
	return diff(&in, &out, buf, n);
}

static __thread unsigned int tls_seed;

struct worker {
	unsigned int seed;
	int rounds;
	char error[128];
	int failed;
};

static void *worker(void *p)
{
	struct worker *w = p;

	tls_seed = w->seed;
	for (int r = 0; r < w->rounds && !w->failed; r++) {
		const char *e = check(w->seed + r, 1, w->error, sizeof(w->error));

		if (e)
			w->failed = 1;
		else if (tls_seed != w->seed) {
			snprintf(w->error, sizeof(w->error), "TLS variable %u became %u", w->seed, tls_seed);
			w->failed = 1;
		}
	}
	return NULL;
}

static int tests;

static void result(int ok, const char *name, const char *why)
{
	printf("%s %d %s%s%s\n", ok ? "ok" : "not ok", ++tests, name, why ? " # " : "", why ? why : "");
	fflush(stdout);
}

static void test_syscalls(void)
{
	char buf[128];
	const char *e = NULL;

	for (int r = 0; r < 100 && !e; r++)
		e = check(r, 0, buf, sizeof(buf));
	result(!e, "registers survive system calls", e);
}

static void test_signals(void)
{
	char buf[128];
	const char *e = NULL;

	handled = 0;
	for (int r = 0; r < 100 && !e; r++)
		e = check(1000 + r, 1, buf, sizeof(buf));
	if (!e && handled != 100 * (CALLS / 8)) {
		snprintf(buf, sizeof(buf), "%d of %d signals handled", (int)handled, 100 * (CALLS / 8));
		e = buf;
	}
	result(!e, "registers survive signal handlers that use them", e);
}

static void test_threads(void)
{
	struct worker w[3] = { { .seed = 7, .rounds = 50 }, { .seed = 77, .rounds = 50 }, { .seed = 777, .rounds = 50 } };
	pthread_t t[3];
	char buf[160];
	const char *e = NULL;
	int i;

	for (i = 0; i < 3; i++)
		if ((errno = pthread_create(&t[i], NULL, worker, &w[i]))) {
			snprintf(buf, sizeof(buf), "pthread_create: %s", strerror(errno));
			result(0, "threads keep their own registers and TLS", buf);
			return;
		}
	for (i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < 3 && !e; i++)
		if (w[i].failed) {
			snprintf(buf, sizeof(buf), "thread %d: %s", i, w[i].error);
			e = buf;
		}
	result(!e, "threads keep their own registers and TLS", e);
}

/* A child (vfork + execve of ourselves) that writes through a bad pointer. */
static void test_segv(const char *self)
{
	char *argv[] = { (char *)self, "segv", NULL };
	char buf[128];
	int status;
	pid_t pid = vfork();

	if (pid == 0) {
		execve(self, argv, environ);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		snprintf(buf, sizeof(buf), "vfork/waitpid: %s", strerror(errno));
		result(0, "a bad pointer kills the program with SIGSEGV", buf);
		return;
	}
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) {
		result(1, "a bad pointer kills the program with SIGSEGV", NULL);
		return;
	}
	snprintf(buf, sizeof(buf), "child status %#x", status);
	result(0, "a bad pointer kills the program with SIGSEGV", buf);
}

static void test_clocks(void)
{
	struct timespec m0, m1, rt;
	struct timeval tv;
	char buf[128];
	const char *e = NULL;
	time_t t;

	clock_gettime(CLOCK_MONOTONIC, &m0);
	nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000 * 1000 }, NULL);
	clock_gettime(CLOCK_MONOTONIC, &m1);
	clock_gettime(CLOCK_REALTIME, &rt);
	gettimeofday(&tv, NULL);
	t = time(NULL);
	long ms = (m1.tv_sec - m0.tv_sec) * 1000 + (m1.tv_nsec - m0.tv_nsec) / 1000000;
	if (ms < 20 || ms > 2000) {
		snprintf(buf, sizeof(buf), "a 20 ms sleep took %ld ms on CLOCK_MONOTONIC", ms);
		e = buf;
	} else if (labs(tv.tv_sec - rt.tv_sec) > 1 || labs(t - rt.tv_sec) > 1) {
		snprintf(buf, sizeof(buf), "clocks disagree: %lld %lld %lld", (long long)rt.tv_sec,
			 (long long)tv.tv_sec, (long long)t);
		e = buf;
	}
	result(!e, "clock_gettime, gettimeofday and time agree and advance", e);
}

/*
 * fork() and clone() without CLONE_VM: with an MMU the child gets a copy, without one they must
 * fail with EINVAL (kernel/fork.c; our UML series for clone) rather than let the child run in
 * its parent's memory, where its first write would be seen by the parent.
 */
static void test_fork(void)
{
	static volatile int shared;
	const char *e = NULL;
	char buf[128];

	for (int how = 0; how < 2 && !e; how++) {
		const char *what = how ? "clone(SIGCHLD)" : "fork()";
		int status;
		pid_t pid;

		shared = 0;
		pid = how ? syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0) : syscall(SYS_fork);
		if (pid == 0) {
			shared = 1;
			_exit(0);
		}
		if (pid < 0 && errno == EINVAL)
			continue;
		if (pid < 0) {
			snprintf(buf, sizeof(buf), "%s failed with %s, not EINVAL", what, strerror(errno));
			e = buf;
		} else if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
			snprintf(buf, sizeof(buf), "%s: the child did not exit normally", what);
			e = buf;
		} else if (shared) {
			snprintf(buf, sizeof(buf), "%s: the child wrote into its parent's memory", what);
			e = buf;
		}
	}
	result(!e, "fork and clone without CLONE_VM copy memory or fail with EINVAL, never share it", e);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "segv")) {
		volatile uintptr_t bad = 16;

		*(volatile int *)bad = 1;
		return 0;
	}

	level = detect();
	nvec = level == AVX512 ? 32 : 16;
	vsize = level == SSE ? 16 : level == AVX ? 32 : 64;
	signal(SIGUSR1, clobber);
	setvbuf(stdout, NULL, _IOLBF, 0);

	printf("TAP version 13\n1..6\n# registers checked: %s\n",
	       level == AVX512 ? "zmm0-31, k1-7 (AVX-512)" : level == AVX ? "ymm0-15 (AVX)" : "xmm0-15 (SSE)");
	test_syscalls();
	test_signals();
	test_threads();
	test_segv(argv[0]);
	test_clocks();
	test_fork();
	return 0;
}
