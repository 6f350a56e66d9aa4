// SPDX-License-Identifier: GPL-2.0
/*
 * syscall-bench: latency of a few system calls and of starting a process (vfork + execve +
 * wait), measured from inside whatever runs it: natively, or as init of a UML kernel.
 * Prints one line per measurement: "bench <name> <iterations> <ns per operation> <best ns>": the
 * mean over the whole run, and the mean of its fastest batch (of 64 operations; 1 for process
 * start-up), which a busy host's preemption leaves out.
 * As PID 1 it mounts devtmpfs on /dev unless the kernel did (DEVTMPFS_MOUNT) and powers the
 * kernel off at the end.
 *
 * Run natively it also measures the floor of no-MMU UML's system call path: a system call that a
 * seccomp filter turns into SIGSYS, whose handler sets the result and returns (host signal
 * delivery plus rt_sigreturn), as no-MMU UML does for every call of its programs.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

static const char *self;
static int null_fd;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void op_getpid(void)
{
	syscall(SYS_getpid);
}

static void op_read(void)
{
	char c;

	if (read(null_fd, &c, 1) != 0)
		abort();
}

static void op_write(void)
{
	if (write(null_fd, "x", 1) != 1)
		abort();
}

static void op_open_close(void)
{
	int fd = open("/dev/null", O_RDONLY);

	if (fd < 0 || close(fd))
		abort();
}

static void op_stat(void)
{
	struct stat st;

	if (stat("/", &st))
		abort();
}

static void op_spawn(void)
{
	char *argv[] = { (char *)self, "exit", NULL };
	int status;
	pid_t pid = vfork();

	if (pid == 0) {
		execve(self, argv, environ);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		abort();
}

static void sigsys_handler(int sig, siginfo_t *info, void *uc)
{
	((ucontext_t *)uc)->uc_mcontext.gregs[REG_RAX] = 0;
}

static void op_sigsys(void)
{
	if (syscall(SYS_getppid))
		abort();
}

/* From here on getppid raises SIGSYS (and returns 0 through the handler); nothing else changes. */
static void trap_getppid(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(filter) / sizeof(filter[0]), filter };
	struct sigaction sa = { .sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO };

	if (sigaction(SIGSYS, &sa, NULL) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
		perror("seccomp");
		exit(1);
	}
}

/* Runs op for about `seconds`, in batches, after a short warm-up. */
static void measure(const char *name, void (*op)(void), double seconds, long batch)
{
	long n = 0;
	double t0, t, b0, best = 1e9;

	for (int i = 0; i < 10; i++)
		op();
	t0 = now();
	do {
		b0 = now();
		for (long i = 0; i < batch; i++)
			op();
		t = now();
		if ((t - b0) / batch < best)
			best = (t - b0) / batch;
		n += batch;
		t -= t0;
	} while (t < seconds);
	printf("bench %s %ld %.0f %.0f\n", name, n, t / n * 1e9, best * 1e9);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "exit"))
		return 0;
	self = argv[0];
	if (getpid() == 1 && access("/dev/null", F_OK))
		mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	null_fd = open("/dev/null", O_RDWR);
	if (null_fd < 0) {
		perror("/dev/null");
		return 1;
	}
	measure("getpid", op_getpid, 1.0, 64);
	measure("read-devnull", op_read, 1.0, 64);
	measure("write-devnull", op_write, 1.0, 64);
	measure("open-close", op_open_close, 1.0, 64);
	measure("stat", op_stat, 1.0, 64);
	measure("vfork-execve-wait", op_spawn, 2.0, 1);
	if (getpid() == 1) {
		sync();
		reboot(RB_POWER_OFF);
	}
	/* Last: the filter stays for the rest of the process (and every child). */
	trap_getppid();
	measure("sigsys-roundtrip", op_sigsys, 1.0, 64);
	return 0;
}
