// SPDX-License-Identifier: GPL-2.0
/*
 * nommu-ci init: runs kselftest programs one by one and prints KTAP v1 on the console.
 *
 * Built static (MMU: `gcc -static`; no-MMU later: musl static-pie). Only vfork()+execve() start
 * processes, never fork(), so the same code runs without an MMU.
 *
 * Input: /nommu-ci/plan, one test a line, tab-separated (lines starting with '#' are comments):
 *     target  test  timeout_s                      run /kselftest/<target>/<test>
 *     target  test  timeout_s  reason  [detail...] do not run: `ok N test # SKIP reason`,
 *                                                  each detail field becomes a `# ` diagnostic
 * Lines of one target must be consecutive. timeout_s 0 means no per-test timeout.
 *
 * Output (KTAP v1, as shared/src/ktap parses it):
 *     KTAP version 1
 *     1..<targets>
 *         KTAP version 1
 *         # Subtest: <target>
 *         1..<tests>
 *         # <output of a test that prints no TAP>          <- becomes the test's diagnostics
 *         ok 1 <test>
 *             TAP version 13                               <- a test's own TAP, indented, with
 *             # Subtest: <test>                               a header naming it (a version line
 *                                                             is added if it starts with its plan)
 *             1..3
 *             ok 1 ...
 *         ok 2 <test>
 *         ok 3 <test> # SKIP <reason>
 *     ok 1 <target>
 * A test is `ok` on exit 0, `ok ... # SKIP` on exit 4 (KSFT_SKIP), else `not ok` with the exit
 * code, signal or timeout as a diagnostic. A TAP test that fails that way while all its own
 * results were ok gets one more nested result (`not ok N+1 timeout|exit|signal`), so the failure
 * is counted where results are counted (leaves). After each test every process but init is killed
 * (kill(-1)), so nothing a test left behind runs into the next one. At the end: power off.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PLAN_FILE
#define PLAN_FILE "/nommu-ci/plan"
#endif
#ifndef TEST_ROOT
#define TEST_ROOT "/kselftest"
#endif

#define MAX_TESTS 4096
#define MAX_LINE 4096
#define MAX_OUTPUT (1 << 20) /* bytes of output kept per test; the rest is dropped */
#define MAX_FIELD 512
#define IND_TARGET "    "
#define IND_TEST "        "

struct test {
	char target[128];
	char name[128];
	int timeout_s;
	char *skip;     /* reason, or NULL: run it */
	char *details;  /* tab-separated diagnostics of a skip */
};

static struct test tests[MAX_TESTS];
static int ntests;
static int out_fd = 1;
static int standalone; /* not PID 1: a test run on the host (no mounts, no poweroff) */
static const char *test_root = TEST_ROOT;

/* One write() per line, so kernel messages cannot land inside our lines. */
static void emit(const char *fmt, ...)
{
	char buf[MAX_LINE + 256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(out_fd, buf + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += w;
	}
}

/* Names go into KTAP result lines: no whitespace, no '#'. */
static void clean_name(char *s)
{
	for (; *s; s++)
		if (*s == ' ' || *s == '\t' || *s == '#' || (unsigned char)*s < 0x20)
			*s = '_';
}

/* Free text on one line: no control characters. */
static void clean_text(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

static void setup_mounts(void)
{
	mkdir("/proc", 0555);
	mkdir("/sys", 0555);
	mkdir("/dev", 0755);
	mkdir("/tmp", 01777);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) != 0) {
		/* No devtmpfs: a tmpfs with the few nodes tests need. */
		mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755");
		mknod("/dev/console", S_IFCHR | 0600, makedev(5, 1));
		mknod("/dev/null", S_IFCHR | 0666, makedev(1, 3));
		mknod("/dev/zero", S_IFCHR | 0666, makedev(1, 5));
		mknod("/dev/tty", S_IFCHR | 0666, makedev(5, 0));
		mknod("/dev/urandom", S_IFCHR | 0666, makedev(1, 9));
		mknod("/dev/random", S_IFCHR | 0666, makedev(1, 8));
	}
	mkdir("/dev/shm", 01777);
	mount("tmpfs", "/dev/shm", "tmpfs", 0, "mode=1777");
	mkdir("/dev/pts", 0755);
	mount("devpts", "/dev/pts", "devpts", 0, "ptmxmode=0666");
	mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777");
	symlink("/proc/self/fd", "/dev/fd");

	/* The kernel found no /dev/console on the hostfs root: open it now. */
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0 && fd != 0) {
		dup2(fd, 0);
		close(fd);
	}
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		_exit(1);
	return d;
}

static int read_plan(const char *file)
{
	FILE *f = fopen(file, "r");
	char line[8192];

	if (!f)
		return -1;
	while (ntests < MAX_TESTS && fgets(line, sizeof(line), f)) {
		char *fields[4] = { 0 };
		char *p = line;
		int n = 0;

		line[strcspn(line, "\r\n")] = 0;
		if (line[0] == '#' || line[0] == 0)
			continue;
		while (n < 4) {
			fields[n++] = p;
			p = strchr(p, '\t');
			if (!p)
				break;
			*p++ = 0;
		}
		if (n < 2)
			continue;
		struct test *t = &tests[ntests++];
		snprintf(t->target, sizeof(t->target), "%s", fields[0]);
		snprintf(t->name, sizeof(t->name), "%s", fields[1]);
		clean_name(t->target);
		clean_name(t->name);
		t->timeout_s = n >= 3 ? atoi(fields[2]) : 45;
		if (n >= 4 && fields[3][0]) {
			/* reason, then the remaining tab-separated details (p points past the reason) */
			t->skip = xstrdup(fields[3]);
			clean_text(t->skip);
			t->details = p ? xstrdup(p) : NULL;
		}
	}
	fclose(f);
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* How one test's output is being turned into KTAP. */
struct capture {
	const char *name;
	int tap;          /* printed a (K)TAP version line: its lines are nested as a subtest */
	int plan_seen;
	int results;      /* its own top-level results */
	int failures;     /* of which `not ok` without SKIP/TODO */
	size_t bytes;
	int truncated;
	char last[MAX_FIELD];     /* last non-empty line, for a skip reason */
	char lastskip[MAX_FIELD]; /* text after the last "SKIP" seen */
	char buf[MAX_LINE + 1];
	size_t len;
};

static int is_version(const char *l)
{
	while (*l == ' ' || *l == '\t')
		l++;
	return (!strncmp(l, "TAP version ", 12) || !strncmp(l, "KTAP version ", 13));
}

static void remember(struct capture *c, const char *line)
{
	const char *s = line, *k;

	while (*s == ' ' || *s == '\t' || *s == '#')
		s++;
	if (!*s)
		return;
	snprintf(c->last, sizeof(c->last), "%s", s);
	k = strstr(line, "SKIP");
	if (k) {
		k += 4;
		while (*k == ' ' || *k == ':' || *k == '-')
			k++;
		if (*k)
			snprintf(c->lastskip, sizeof(c->lastskip), "%s", k);
	}
}

static void out_line(struct capture *c, char *line)
{
	size_t n = strlen(line);

	if (n && line[n - 1] == '\r')
		line[--n] = 0;
	clean_text(line);
	if (c->truncated)
		return;
	c->bytes += n + 1;
	if (c->bytes > MAX_OUTPUT) {
		c->truncated = 1;
		emit("%s# %s: output truncated after %d bytes", c->tap ? IND_TEST : IND_TARGET, c->name, MAX_OUTPUT);
		return;
	}
	remember(c, line);
	if (!c->tap) {
		if (is_version(line)) {
			const char *v = line;

			while (*v == ' ' || *v == '\t')
				v++;
			c->tap = 1;
			emit(IND_TEST "%s", v);
			emit(IND_TEST "# Subtest: %s", c->name);
			return;
		}
		if (!strncmp(line, "1..", 3) && line[3] >= '0' && line[3] <= '9') {
			/* TAP without a version line (kselftest.h's plan without ksft_print_header()). */
			c->tap = 1;
			emit(IND_TEST "TAP version 13");
			emit(IND_TEST "# Subtest: %s", c->name);
			c->plan_seen = 1;
			emit(IND_TEST "%s", line);
			return;
		}
		/* Already a diagnostic: as it is, unless it would be read as a subtest header. */
		if (line[0] == '#' && strncmp(line, "# Subtest:", 10))
			emit(IND_TARGET "%s", line);
		else
			emit(IND_TARGET "# %s", line);
		return;
	}
	/* TAP mode: the test's top level (column 0) is nested at IND_TEST. */
	if (line[0] != ' ' && line[0] != '\t') {
		if (is_version(line) || !strncmp(line, "# Subtest:", 10) || (!strncmp(line, "1..", 3) && c->plan_seen)) {
			/* A second header would end our subtest early: keep it as text. */
			emit(IND_TEST "# %s", line);
			return;
		}
		if (!strncmp(line, "1..", 3))
			c->plan_seen = 1;
		int notok = !strncmp(line, "not ok ", 7);
		if (notok || !strncmp(line, "ok ", 3)) {
			c->results++;
			const char *d = strstr(line, " # ");
			int directive = d && (!strncasecmp(d + 3, "SKIP", 4) || !strncasecmp(d + 3, "TODO", 4));
			if (notok && !directive)
				c->failures++;
		}
	}
	emit(IND_TEST "%s", line);
}

static void feed(struct capture *c, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = data[i];

		if (ch == '\n' || c->len == MAX_LINE) {
			c->buf[c->len] = 0;
			out_line(c, c->buf);
			c->len = 0;
			if (ch == '\n')
				continue;
		}
		c->buf[c->len++] = ch;
	}
}

static void flush_partial(struct capture *c)
{
	if (c->len) {
		c->buf[c->len] = 0;
		out_line(c, c->buf);
		c->len = 0;
	}
}

/* Reaps every exited process; returns 1 and the status if `pid` was among them. */
static int reap(pid_t pid, int *status)
{
	int st, found = 0;
	pid_t p;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p == pid) {
			*status = st;
			found = 1;
		}
	}
	return found;
}

/* Kills everything but us (PID 1) and reaps it. Standalone: only the test's process group. */
static void kill_rest(pid_t pgid)
{
	int st;

	if (!standalone)
		kill(-1, SIGKILL);
	else if (pgid > 0)
		kill(-pgid, SIGKILL);
	for (int i = 0; i < 50; i++) {
		pid_t p = waitpid(-1, &st, WNOHANG);

		if (p < 0 && errno == ECHILD)
			break;
		if (p == 0)
			usleep(20000);
	}
}

static const char *signame(int sig)
{
	const char *s = strsignal(sig);

	return s ? s : "signal";
}

/* vfork + execve, in a function of its own so the caller's locals are not clobbered. */
static __attribute__((noinline)) pid_t spawn(const char *path, const char *dir, char **argv, char **envp, int out)
{
	pid_t pid = vfork();

	if (pid == 0) {
		/* vfork child: only syscalls until execve/_exit. */
		static const char msg[] = "nommu-ci init: execve failed\n";

		setsid();
		dup2(out, 1);
		dup2(out, 2);
		if (chdir(dir) != 0)
			_exit(126);
		execve(path, argv, envp);
		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(127);
		_exit(127);
	}
	return pid;
}

/* Runs one test; prints its output and its result line `<verdict> num name`. Returns 1 if it failed. */
static int run_test(struct test *t, int num)
{
	static struct capture cap;
	char dir[512], path[700], reason[MAX_FIELD + 64];
	char *argv[2], *envp[8];
	char envpath[600], envtarget[200];
	int pfd[2], status = 0, exited = 0, timed_out = 0;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/%s", test_root, t->target);
	snprintf(path, sizeof(path), "%s/%s", dir, t->name);
	snprintf(envpath, sizeof(envpath), "PATH=%s:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", dir);
	snprintf(envtarget, sizeof(envtarget), "KSFT_TARGET=%s", t->target);
	argv[0] = path;
	argv[1] = NULL;
	envp[0] = envpath;
	envp[1] = "HOME=/tmp";
	envp[2] = "TMPDIR=/tmp";
	envp[3] = "TERM=dumb";
	envp[4] = "LANG=C";
	envp[5] = envtarget;
	envp[6] = NULL;

	memset(&cap, 0, sizeof(cap));
	cap.name = t->name;
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		emit(IND_TARGET "# %s: pipe: %s", t->name, strerror(errno));
		emit(IND_TARGET "not ok %d %s", num, t->name);
		return 1;
	}
	pid = spawn(path, dir, argv, envp, pfd[1]);
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		emit(IND_TARGET "# %s: vfork: %s", t->name, strerror(errno));
		emit(IND_TARGET "not ok %d %s", num, t->name);
		return 1;
	}
	double start = now();
	double deadline = t->timeout_s > 0 ? start + t->timeout_s : 0;
	int eof = 0;
	char buf[8192];

	while (!exited || !eof) {
		int wait_ms = 200;

		if (exited && !eof) {
			/* The test is gone and everything it left is killed: drain what is in the pipe. */
			struct pollfd p = { .fd = pfd[0], .events = POLLIN };
			if (poll(&p, 1, 2000) <= 0)
				break;
			ssize_t r = read(pfd[0], buf, sizeof(buf));
			if (r <= 0)
				break;
			feed(&cap, buf, r);
			continue;
		}
		if (!eof) {
			struct pollfd p = { .fd = pfd[0], .events = POLLIN };
			int pr = poll(&p, 1, wait_ms);

			if (pr > 0) {
				ssize_t r = read(pfd[0], buf, sizeof(buf));
				if (r > 0)
					feed(&cap, buf, r);
				else if (r == 0 || errno != EINTR)
					eof = 1;
			}
		} else {
			usleep(10000);
		}
		if (reap(pid, &status)) {
			exited = 1;
			kill_rest(pid);
		} else if (deadline && now() >= deadline) {
			timed_out = 1;
			kill(-pid, SIGKILL);
			kill_rest(pid);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			exited = 1;
		}
	}
	close(pfd[0]);
	flush_partial(&cap);
	double secs = now() - start;

	const char *ind = cap.tap ? IND_TEST : IND_TARGET;
	const char *extra = NULL; /* name of the synthetic nested result, if one is needed */
	int failed = 0, skipped = 0;

	reason[0] = 0;
	if (timed_out) {
		failed = 1;
		extra = "timeout";
		emit("%s# %s: timed out after %d s; killed", ind, t->name, t->timeout_s);
	} else if (WIFSIGNALED(status)) {
		failed = 1;
		extra = "signal";
		emit("%s# %s: killed by signal %d (%s)", ind, t->name, WTERMSIG(status), signame(WTERMSIG(status)));
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 4) {
		skipped = 1;
		snprintf(reason, sizeof(reason), "%s", cap.lastskip[0] ? cap.lastskip : cap.last[0] ? cap.last : "exit code 4 (KSFT_SKIP)");
		clean_text(reason);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		failed = 1;
		extra = "exit";
		emit("%s# %s: exit code %d%s", ind, t->name, WEXITSTATUS(status),
		     WEXITSTATUS(status) == 127 ? " (could not be executed)" : "");
	}
	if (cap.tap && failed && cap.failures == 0)
		emit(IND_TEST "not ok %d %s", cap.results + 1, extra);
	emit(IND_TARGET "# %s: %.1f s", t->name, secs);
	if (skipped)
		emit(IND_TARGET "ok %d %s # SKIP %s", num, t->name, reason);
	else
		emit(IND_TARGET "%s %d %s", failed ? "not ok" : "ok", num, t->name);
	return failed;
}

static void skip_test(struct test *t, int num)
{
	if (t->details) {
		char *p = t->details, *next;

		for (; p; p = next) {
			next = strchr(p, '\t');
			if (next)
				*next++ = 0;
			clean_text(p);
			emit(IND_TARGET "# %s", p);
		}
	}
	emit(IND_TARGET "ok %d %s # SKIP %s", num, t->name, t->skip);
}

static void finish(int code)
{
	if (standalone)
		exit(code);
	sync();
	reboot(RB_POWER_OFF);
	/* Not reached; if it is, exiting init panics the kernel, which also ends the run. */
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	const char *plan = PLAN_FILE;
	int targets = 0, failures = 0;

	standalone = getpid() != 1;
	if (!standalone)
		setup_mounts();
	else {
		/* On the host (tests of init itself): init <plan> [<test root>] */
		if (argc > 1)
			plan = argv[1];
		if (argc > 2)
			test_root = argv[2];
	}

	/* Whatever the console had on its current line, KTAP starts at column 0. */
	emit("");
	if (read_plan(plan) != 0) {
		emit("KTAP version 1");
		emit("1..0");
		emit("# nommu-ci init: cannot read %s: %s", plan, strerror(errno));
		finish(1);
	}
	for (int i = 0; i < ntests; i++)
		if (i == 0 || strcmp(tests[i].target, tests[i - 1].target))
			targets++;
	emit("KTAP version 1");
	emit("1..%d", targets);

	int tnum = 0;
	for (int i = 0; i < ntests;) {
		int j = i, n, failed = 0;

		while (j < ntests && !strcmp(tests[j].target, tests[i].target))
			j++;
		n = j - i;
		tnum++;
		emit(IND_TARGET "KTAP version 1");
		emit(IND_TARGET "# Subtest: %s", tests[i].target);
		emit(IND_TARGET "1..%d", n);
		for (int k = 0; k < n; k++) {
			struct test *t = &tests[i + k];

			if (t->skip)
				skip_test(t, k + 1);
			else
				failed += run_test(t, k + 1);
		}
		emit("%s %d %s", failed ? "not ok" : "ok", tnum, tests[i].target);
		failures += failed;
		i = j;
	}
	finish(failures ? 1 : 0);
	return 0;
}
