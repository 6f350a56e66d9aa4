// SPDX-License-Identifier: GPL-2.0
/*
 * faults: every fault or trap a program causes is that program's, never the kernel's. Each case
 * runs in a child (vfork + execve of ourselves with the case's name) that does one wrong thing:
 * jumps to NULL, to a wild or non-canonical address or into kernel text, sets the alignment
 * check, trap or direction flag, executes ud2 or int3, divides by zero, runs with its stack
 * pointer outside memory, hands bad or unaligned pointers to system calls; or single-steps
 * another program with ptrace. The parent checks
 * that the child died of the signal POSIX (and x86 Linux) prescribes, or, where the child
 * installs a handler that inspects the signal and moves the instruction pointer on, that it
 * carried on and exited 0; and that the kernel survived each case to run the next. On no-MMU
 * UML programs share the kernel's host thread, so each case is one where a trap could be taken
 * for the kernel's own. Prints TAP.
 *
 * "faults spin" is for a test that stops the kernel from the host: it prints a line and spins
 * in user code forever with a zero fs base and the AC and DF flags set.
 *
 * Build (musl, static-pie for no-MMU or static for MMU):
 *   musl-gcc -O2 -static-pie -o faults faults.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>

#define FL_CF	0x1UL
#define FL_PF	0x4UL
#define FL_AF	0x10UL
#define FL_ZF	0x40UL
#define FL_SF	0x80UL
#define FL_TF	0x100UL
#define FL_DF	0x400UL
#define FL_OF	0x800UL
#define FL_AC	0x40000UL
/* Flags a program may set that a system call must give back as they were. */
#define FL_USER	(FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_DF | FL_OF | FL_AC)

/* Child exit codes besides 0 (the case went as it should). */
#define EXIT_WRONG	1	/* details printed as a "# " line */
#define EXIT_SKIP	77

/* Inline assembly below may push: keep clear of the red zone of the function it is in. */
#define RZ_ENTER "lea -128(%%rsp), %%rsp\n"
#define RZ_LEAVE "lea 128(%%rsp), %%rsp\n"
#define SET_FLAGS(f) "pushfq\n orq $" f ", (%%rsp)\n popfq\n"
#define CLEAR_FLAGS(f) "pushfq\n andq $~" f ", (%%rsp)\n popfq\n"
#define STR(x) #x
#define XSTR(x) STR(x)

static volatile sig_atomic_t handled;
static sigjmp_buf back;

static void wrong(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void wrong(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	_exit(EXIT_WRONG);
}

static void on(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa = { .sa_sigaction = fn, .sa_flags = SA_SIGINFO | flags };

	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL))
		wrong("sigaction(%d): %s", sig, strerror(errno));
}

static greg_t *gregs(void *uc)
{
	return ((ucontext_t *)uc)->uc_mcontext.gregs;
}

/* Labels inside the assembly below, for handlers that check RIP and move it on. */
extern char ud2_at[], ud2_end[], int3_end[], div_at[], div_end[], ac_load_at[];

static void __attribute__((noinline)) do_ud2(void)
{
	__asm__ volatile(".globl ud2_at, ud2_end\nud2_at: ud2\nud2_end:\n");
}

static void __attribute__((noinline)) do_int3(void)
{
	__asm__ volatile(".globl int3_end\nint3\nint3_end:\n");
}

static unsigned int __attribute__((noinline)) do_div(unsigned int d)
{
	unsigned int q;

	__asm__ volatile(".globl div_at, div_end\n"
			 "xor %%edx, %%edx\n"
			 "mov $1, %%eax\n"
			 "div_at: divl %1\n"
			 "div_end:\n"
			 : "=&a"(q) : "r"(d) : "rdx", "cc");
	return q;
}

/* A 4-byte load from p with the alignment check flag set. */
static uint32_t __attribute__((noinline)) ac_load(const void *p)
{
	uint32_t v;

	__asm__ volatile(RZ_ENTER SET_FLAGS(XSTR(FL_AC))
			 ".globl ac_load_at\nac_load_at: movl (%1), %0\n"
			 CLEAR_FLAGS(XSTR(FL_AC)) RZ_LEAVE
			 : "=&r"(v) : "r"(p) : "memory", "cc");
	return v;
}

/* A system call made with the given flags set; their state right after it in *after. */
static long flagged_syscall(unsigned long flags, long nr, long a0, long a1, long a2,
			    unsigned long *after)
{
	unsigned long f;
	long ret;

	__asm__ volatile(RZ_ENTER
			 "pushfq\n orq %[set], (%%rsp)\n popfq\n"
			 "syscall\n"
			 "pushfq\n pop %[f]\n"
			 "pushfq\n andq %[clr], (%%rsp)\n popfq\n"
			 RZ_LEAVE
			 : "=a"(ret), [f] "=&r"(f)
			 : "a"(nr), "D"(a0), "S"(a1), "d"(a2), [set] "r"(flags), [clr] "r"(~flags)
			 : "rcx", "r11", "memory", "cc");
	if (after)
		*after = f;
	return ret;
}

static void null_back(int sig, siginfo_t *si, void *uc)
{
	greg_t *g = gregs(uc);

	/* A call to NULL: RIP is 0 and the return address is on top of the stack. */
	if (sig != SIGSEGV || si->si_addr != NULL || g[REG_RIP] != 0)
		wrong("signal %d, si_addr %p, RIP %#llx", sig, si->si_addr, (long long)g[REG_RIP]);
	g[REG_RIP] = *(greg_t *)g[REG_RSP];
	g[REG_RSP] += 8;
	handled++;
}

static void ud2_skip(int sig, siginfo_t *si, void *uc)
{
	greg_t *g = gregs(uc);

	if (sig != SIGILL || si->si_code != ILL_ILLOPN || si->si_addr != ud2_at ||
	    g[REG_RIP] != (greg_t)ud2_at)
		wrong("signal %d code %d, si_addr %p, RIP %#llx, ud2 at %p", sig, si->si_code,
		      si->si_addr, (long long)g[REG_RIP], ud2_at);
	g[REG_RIP] = (greg_t)ud2_end;
	handled++;
}

static void int3_seen(int sig, siginfo_t *si, void *uc)
{
	greg_t *g = gregs(uc);

	/* x86: RIP is past the int3 already; Linux says SI_KERNEL. */
	if (sig != SIGTRAP || si->si_code != SI_KERNEL || g[REG_RIP] != (greg_t)int3_end)
		wrong("signal %d code %d, RIP %#llx, int3 ends at %p", sig, si->si_code,
		      (long long)g[REG_RIP], int3_end);
	handled++;
}

static void div_skip(int sig, siginfo_t *si, void *uc)
{
	greg_t *g = gregs(uc);

	if (sig != SIGFPE || si->si_code != FPE_INTDIV || g[REG_RIP] != (greg_t)div_at)
		wrong("signal %d code %d, RIP %#llx, div at %p", sig, si->si_code,
		      (long long)g[REG_RIP], div_at);
	g[REG_RIP] = (greg_t)div_end;
	g[REG_RAX] = 12345;
	handled++;
}

static void ac_clear(int sig, siginfo_t *si, void *uc)
{
	greg_t *g = gregs(uc);

	if (sig != SIGBUS || si->si_code != BUS_ADRALN || g[REG_RIP] != (greg_t)ac_load_at ||
	    !(g[REG_EFL] & FL_AC))
		wrong("signal %d code %d, RIP %#llx, flags %#llx", sig, si->si_code,
		      (long long)g[REG_RIP], (long long)g[REG_EFL]);
	g[REG_EFL] &= ~FL_AC;	/* the load is retried without the check */
	handled++;
}

static void tf_clear(int sig, siginfo_t *si, void *uc)
{
	greg_t *g = gregs(uc);

	if (sig != SIGTRAP || si->si_code != TRAP_TRACE)
		wrong("signal %d code %d", sig, si->si_code);
	g[REG_EFL] &= ~FL_TF;
	handled++;
}

static void segv_jump(int sig, siginfo_t *si, void *uc)
{
	handled++;
	siglongjmp(back, 1);
}

static void segv_return(int sig, siginfo_t *si, void *uc)
{
	handled++;
}

static void check_handled(int n)
{
	if (handled != n)
		wrong("the handler ran %d times, not %d", (int)handled, n);
}

/* Address of a kernel function, from /proc/kallsyms, or 0. */
static unsigned long kernel_symbol(const char *name)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[256], sym[128];
	unsigned long a = 0, v;
	char t;

	if (!f)
		return 0;
	while (!a && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx %c %127s", &v, &t, sym) == 3 && !strcmp(sym, name) &&
		    (t == 'T' || t == 't'))
			a = v;
	fclose(f);
	return a;
}

/*
 * The program the ptrace-singlestep case steps through: it stops itself at an int3, then runs
 * two nops, a system call and a nop, one stop each under PTRACE_SINGLESTEP.
 */
static void step_target(void)
{
	__asm__ volatile("int3\n"
			 "nop\n"		/* +0 */
			 "nop\n"		/* +1 */
			 "mov $39, %%eax\n"	/* +2: getpid, 5 bytes */
			 "syscall\n"		/* +7 */
			 "nop\n"		/* +9 */
			 ::: "rax", "rcx", "r11", "memory");
}

/* Where the stepped program must stop, from the instruction after its int3. */
static const long step_offsets[] = { 1, 2, 7, 9, 10 };

static void singlestep(const char *self)
{
	char *args[] = { (char *)self, "step-target", NULL };
	struct user_regs_struct regs;
	unsigned long start;
	int status;
	pid_t pid = vfork();

	if (pid == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		execve(self, args, environ);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status))
		wrong("the traced child did not stop at its execve (status %#x)", status);
	/* On to the int3. */
	if (ptrace(PTRACE_CONT, pid, 0, 0) || waitpid(pid, &status, 0) != pid ||
	    !WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP ||
	    ptrace(PTRACE_GETREGS, pid, 0, &regs))
		wrong("the traced child did not stop at its int3 (status %#x)", status);
	start = regs.rip;
	for (unsigned int i = 0; i < sizeof(step_offsets) / sizeof(step_offsets[0]); i++) {
		if (ptrace(PTRACE_SINGLESTEP, pid, 0, 0)) {
			if (errno == EIO) {
				printf("# PTRACE_SINGLESTEP: %s (not supported)\n", strerror(errno));
				kill(pid, SIGKILL);
				exit(EXIT_SKIP);
			}
			wrong("PTRACE_SINGLESTEP: %s", strerror(errno));
		}
		if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status) ||
		    WSTOPSIG(status) != SIGTRAP || ptrace(PTRACE_GETREGS, pid, 0, &regs))
			wrong("step %u: status %#x", i + 1, status);
		if (regs.rip != start + step_offsets[i])
			wrong("step %u stopped at int3%+ld, not int3%+ld", i + 1, (long)(regs.rip - start),
			      step_offsets[i]);
	}
	if (ptrace(PTRACE_CONT, pid, 0, 0) || waitpid(pid, &status, 0) != pid ||
	    !WIFEXITED(status) || WEXITSTATUS(status))
		wrong("the stepped child did not run on to exit 0 (status %#x)", status);
}

/* Runs one case in this process; returns only if it went as it should. */
static void run_case(const char *self, const char *name)
{
	static char buf[64] __attribute__((aligned(16)));
	unsigned long after;
	long r;

	if (!strcmp(name, "null-call")) {
		((void (*)(void))0)();
	} else if (!strcmp(name, "null-call-handler")) {
		on(SIGSEGV, null_back, 0);
		((void (*)(void))0)();
		check_handled(1);
	} else if (!strcmp(name, "wild-jump")) {
		/* The top page of the x86_64 user address space is never mapped. */
		((void (*)(void))0x7ffffffff000UL)();
	} else if (!strcmp(name, "noncanonical-jump")) {
		((void (*)(void))0x8000000000000000UL)();
	} else if (!strcmp(name, "kernel-text")) {
		/* The kernel's strlen(NULL): on no-MMU it runs, and faults, in kernel text. */
		unsigned long a = kernel_symbol("strlen");

		if (!a) {
			printf("# no strlen in /proc/kallsyms\n");
			exit(EXIT_SKIP);
		}
		((size_t (*)(const char *))a)(NULL);
	} else if (!strcmp(name, "ud2")) {
		do_ud2();
	} else if (!strcmp(name, "ud2-handler")) {
		on(SIGILL, ud2_skip, 0);
		do_ud2();
		do_ud2();
		check_handled(2);
	} else if (!strcmp(name, "int3")) {
		do_int3();
	} else if (!strcmp(name, "int3-handler")) {
		on(SIGTRAP, int3_seen, 0);
		do_int3();
		check_handled(1);
	} else if (!strcmp(name, "divide-error")) {
		do_div(0);
	} else if (!strcmp(name, "divide-error-handler")) {
		on(SIGFPE, div_skip, 0);
		if (do_div(0) != 12345)
			wrong("the handler's quotient was lost");
		check_handled(1);
	} else if (!strcmp(name, "ac-unaligned-load")) {
		ac_load(buf + 1);
	} else if (!strcmp(name, "ac-unaligned-load-handler")) {
		on(SIGBUS, ac_clear, 0);
		memcpy(buf + 1, "\x11\x22\x33\x44", 4);
		if (ac_load(buf + 1) != 0x44332211)
			wrong("the load read the wrong value");
		check_handled(1);
	} else if (!strcmp(name, "ac-unaligned-syscalls")) {
		/* The kernel copies to and from unaligned user buffers while the program has AC set. */
		static char ubuf[512] __attribute__((aligned(16)));
		struct timespec ts;
		int p[2];

		if (pipe(p))
			wrong("pipe: %s", strerror(errno));
		memcpy(buf + 1, "unaligned AC data", 17);
		r = flagged_syscall(FL_AC, SYS_write, p[1], (long)(buf + 1), 17, &after);
		if (r != 17 || !(after & FL_AC))
			wrong("write: %ld, flags after %#lx", r, after);
		r = flagged_syscall(FL_AC, SYS_read, p[0], (long)(buf + 33), 17, &after);
		if (r != 17 || memcmp(buf + 33, "unaligned AC data", 17))
			wrong("read: %ld", r);
		r = flagged_syscall(FL_AC, SYS_clock_gettime, CLOCK_MONOTONIC, (long)(buf + 3), 0, NULL);
		memcpy(&ts, buf + 3, sizeof(ts));
		if (r || (ts.tv_sec == 0 && ts.tv_nsec == 0))
			wrong("clock_gettime: %ld", r);
		r = flagged_syscall(FL_AC, SYS_uname, (long)(ubuf + 1), 0, 0, NULL);
		if (r)
			wrong("uname: %ld", r);
	} else if (!strcmp(name, "flags-survive-syscall")) {
		r = flagged_syscall(FL_USER, SYS_getpid, 0, 0, 0, &after);
		if (r != getpid() || (after & FL_USER) != FL_USER)
			wrong("getpid %ld (pid %d); flags after %#lx, set %#lx", r, getpid(), after,
			      FL_USER);
	} else if (!strcmp(name, "trap-flag")) {
		__asm__ volatile(RZ_ENTER SET_FLAGS(XSTR(FL_TF)) "nop\nnop\n" CLEAR_FLAGS(XSTR(FL_TF)) RZ_LEAVE ::: "memory", "cc");
	} else if (!strcmp(name, "trap-flag-handler")) {
		on(SIGTRAP, tf_clear, 0);
		__asm__ volatile(RZ_ENTER SET_FLAGS(XSTR(FL_TF)) "nop\nnop\n" CLEAR_FLAGS(XSTR(FL_TF)) RZ_LEAVE ::: "memory", "cc");
		check_handled(1);
	} else if (!strcmp(name, "bad-stack")) {
		__asm__ volatile("mov %%rsp, %%rbx\n mov $0x1000, %%rsp\n push $0\n mov %%rbx, %%rsp\n" ::: "rbx", "memory");
	} else if (!strcmp(name, "bad-stack-handler")) {
		/* No alternate stack: the kernel cannot write the handler's frame. */
		on(SIGSEGV, segv_return, 0);
		__asm__ volatile("mov %%rsp, %%rbx\n mov $0x1000, %%rsp\n push $0\n mov %%rbx, %%rsp\n" ::: "rbx", "memory");
	} else if (!strcmp(name, "bad-stack-altstack")) {
		static char alt[65536] __attribute__((aligned(16)));
		stack_t ss = { .ss_sp = alt, .ss_size = sizeof(alt) };

		if (sigaltstack(&ss, NULL))
			wrong("sigaltstack: %s", strerror(errno));
		on(SIGSEGV, segv_jump, SA_ONSTACK);
		if (!sigsetjmp(back, 1))
			__asm__ volatile("mov %%rsp, %%rbx\n mov $0x1000, %%rsp\n push $0\n mov %%rbx, %%rsp\n" ::: "rbx", "memory");
		check_handled(1);
	} else if (!strcmp(name, "bad-syscall-pointers")) {
		/* A pipe with data in it, so that reads and writes get as far as the copy. */
		static int p[2];
		static const struct { const char *what; long nr; const int *fd; long a1, a2; } bad[] = {
			{ "write(NULL)", SYS_write, &p[1], 0, 16 },
			{ "write(low page)", SYS_write, &p[1], 0x1000, 16 },
			{ "write(top of user space)", SYS_write, &p[1], 0x7ffffffff000L, 16 },
			{ "write(non-canonical)", SYS_write, &p[1], (long)0x8000000000000000UL, 16 },
			{ "write(-4096)", SYS_write, &p[1], -4096L, 16 },
			{ "read(NULL)", SYS_read, &p[0], 0, 16 },
			{ "read(low page)", SYS_read, &p[0], 0x1000, 16 },
			{ "clock_gettime(bad)", SYS_clock_gettime, NULL, CLOCK_MONOTONIC, 8 },
			{ "open(NULL)", SYS_open, NULL, 0, 0 },
			{ "uname(NULL)", SYS_uname, NULL, 0, 0 },
			{ "nanosleep(bad)", SYS_nanosleep, NULL, 0x1000, 0 },
		};

		if (pipe(p) || write(p[1], buf, sizeof(buf)) != sizeof(buf))
			wrong("pipe: %s", strerror(errno));
		for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (bad[i].fd)
				r = syscall(bad[i].nr, *bad[i].fd, bad[i].a1, bad[i].a2);
			else
				r = syscall(bad[i].nr, bad[i].a1, bad[i].a2);
			if (r != -1 || errno != EFAULT)
				wrong("%s returned %ld (%s), not EFAULT", bad[i].what, r,
				      r == -1 ? strerror(errno) : "no error");
		}
	} else if (!strcmp(name, "ptrace-singlestep")) {
		singlestep(self);
	} else if (!strcmp(name, "step-target")) {
		step_target();
	} else if (!strcmp(name, "spin")) {
		printf("faults: spinning in user code\n");
		fflush(stdout);
		/* From here on no TLS (fs base 0) and AC and DF set: only assembly, no libc. */
		__asm__ volatile("mov %0, %%eax\n"
				 "mov $0x1002, %%edi\n"	/* ARCH_SET_FS */
				 "xor %%esi, %%esi\n"
				 "syscall\n"
				 SET_FLAGS(XSTR(FL_AC | FL_DF))
				 "1: jmp 1b\n"
				 : : "i"(SYS_arch_prctl) : "rax", "rdi", "rsi", "rcx", "r11", "memory", "cc");
	} else {
		wrong("unknown case %s", name);
	}
}

/* name, and the signal the child must die of (0: it must exit 0) */
static const struct {
	const char *name;
	int sig;
} cases[] = {
	{ "null-call", SIGSEGV },
	{ "null-call-handler", 0 },
	{ "wild-jump", SIGSEGV },
	{ "noncanonical-jump", SIGSEGV },
	{ "kernel-text", SIGSEGV },
	{ "ud2", SIGILL },
	{ "ud2-handler", 0 },
	{ "int3", SIGTRAP },
	{ "int3-handler", 0 },
	{ "divide-error", SIGFPE },
	{ "divide-error-handler", 0 },
	{ "ac-unaligned-load", SIGBUS },
	{ "ac-unaligned-load-handler", 0 },
	{ "ac-unaligned-syscalls", 0 },
	{ "flags-survive-syscall", 0 },
	{ "trap-flag", SIGTRAP },
	{ "trap-flag-handler", 0 },
	{ "bad-stack", SIGSEGV },
	{ "bad-stack-handler", SIGSEGV },
	{ "bad-stack-altstack", 0 },
	{ "bad-syscall-pointers", 0 },
	{ "ptrace-singlestep", 0 },
};

static const char *status_text(int status, char *buf, size_t n)
{
	if (WIFSIGNALED(status))
		snprintf(buf, n, "killed by %s", strsignal(WTERMSIG(status)));
	else if (WIFEXITED(status))
		snprintf(buf, n, "exit %d", WEXITSTATUS(status));
	else
		snprintf(buf, n, "status %#x", status);
	return buf;
}

int main(int argc, char **argv)
{
	unsigned int i, n = sizeof(cases) / sizeof(cases[0]);

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1) {
		run_case(argv[0], argv[1]);
		fflush(stdout);
		_exit(0);
	}

	printf("TAP version 13\n1..%u\n", n);
	for (i = 0; i < n; i++) {
		char *args[] = { argv[0], (char *)cases[i].name, NULL };
		char got[64], want[64];
		int status, ok;
		pid_t pid;

		fflush(stdout);
		pid = vfork();
		if (pid == 0) {
			execve(argv[0], args, environ);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid) {
			printf("not ok %u %s # vfork/waitpid: %s\n", i + 1, cases[i].name, strerror(errno));
			continue;
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SKIP) {
			printf("ok %u %s # SKIP\n", i + 1, cases[i].name);
			continue;
		}
		ok = cases[i].sig ? WIFSIGNALED(status) && WTERMSIG(status) == cases[i].sig
				  : WIFEXITED(status) && WEXITSTATUS(status) == 0;
		if (cases[i].sig)
			snprintf(want, sizeof(want), "killed by %s", strsignal(cases[i].sig));
		else
			snprintf(want, sizeof(want), "exit 0");
		printf("# %s: %s, expected %s\n", cases[i].name, status_text(status, got, sizeof(got)),
		       want);
		printf("%sok %u %s\n", ok ? "" : "not ", i + 1, cases[i].name);
	}
	return 0;
}
