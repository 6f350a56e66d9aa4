// SPDX-License-Identifier: GPL-2.0
/*
 * Test programs for nommu-ci's own init, one binary with its behaviour picked by its name
 * (installed under several names in the rootfs, target `nommu-ci`):
 *   tap-pass    TAP with 3 passing results and a skipped one, exit 0
 *   tap-fail    TAP with one failing result, exit 1
 *   tap-noversion  a line, then TAP without a version line (plan first, as mremap_test), exit 0
 *   tap-crash   TAP plan 1..3, one result, then SIGSEGV
 *   plain-pass  no TAP, two lines of output, exit 0
 *   exit-fail   no TAP, exit 3
 *   skip        prints a reason, exit 4 (KSFT_SKIP)
 *   hang        prints a line, then never returns (the per-test timeout must kill it)
 *   tap-hang    TAP plan 1..2, one passing result, then never returns
 *   bg          starts `hang` in the background holding stdout, exits 0 (init must not wait for it)
 *   poweroff    powers the kernel off mid-run: a test that kills the kernel, so init never
 *               reports it (the worker reports it crashed and boots again for the tests after
 *               it); outside a guest, where reboot(2) is refused, it fails with the reason
 * Uses vfork+execve only, so it runs on no-MMU as well.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];

	(void)argc;
	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(name, "tap-pass")) {
		printf("TAP version 13\n1..4\n# checking things\nok 1 first\nok 2 second\nok 3 third\nok 4 fourth # SKIP not here\n# Totals: pass:3 fail:0 xfail:0 xpass:0 skip:1 error:0\n");
		return 0;
	}
	if (!strcmp(name, "tap-fail")) {
		printf("TAP version 13\n1..2\nok 1 good\n# bad: expected 1, got 2\nnot ok 2 bad\n");
		return 1;
	}
	if (!strcmp(name, "tap-noversion")) {
		printf("# Test configs: none\n1..2\nok 1 one\nok 2 two\n");
		return 0;
	}
	if (!strcmp(name, "tap-crash")) {
		printf("TAP version 13\n1..3\nok 1 before\n");
		raise(SIGSEGV);
		return 0;
	}
	if (!strcmp(name, "plain-pass")) {
		printf("hello from plain-pass\nall good\n");
		return 0;
	}
	if (!strcmp(name, "exit-fail")) {
		printf("something went wrong\n");
		return 3;
	}
	if (!strcmp(name, "skip")) {
		printf("needs a feature this kernel lacks\n");
		return 4;
	}
	if (!strcmp(name, "hang")) {
		printf("hanging now\n");
		for (;;)
			pause();
	}
	if (!strcmp(name, "tap-hang")) {
		printf("TAP version 13\n1..2\nok 1 started\n");
		for (;;)
			pause();
	}
	if (!strcmp(name, "poweroff")) {
		printf("powering the kernel off\n");
		reboot(RB_POWER_OFF);
		perror("reboot");
		return 1;
	}
	if (!strcmp(name, "bg")) {
		char path[4096];
		char *args[] = { path, NULL };
		const char *slash = strrchr(argv[0], '/');

		snprintf(path, sizeof(path), "%.*shang", slash ? (int)(slash - argv[0] + 1) : 0, argv[0]);
		if (vfork() == 0) {
			execve(path, args, NULL);
			_exit(127);
		}
		printf("left a child behind\n");
		return 0;
	}
	fprintf(stderr, "unknown selftest name %s\n", name);
	return 2;
}
