// SPDX-License-Identifier: GPL-2.0
/*
 * What a program on the no-MMU UML kernel can do to the host, and what stops it.
 *
 * Without an MMU a user program runs inside the UML host process and sees all of its memory.
 * The kernel catches the program's system calls with a seccomp filter on the instruction
 * address (calls from the memory user programs live in trap; calls from the UML binary and
 * host libc pass), so a program that jumps to a `syscall` instruction in the UML binary's own
 * text makes a *host* system call with the UML process's rights.  This program does exactly
 * that, proves the calls reach the host (the host's uid, pid and kernel release come back, and
 * a file it writes through the host shows up in the guest), then tries what a hostile job would:
 * read a host file, connect to the service's Redis, write outside the job's directories,
 * overwrite the kernel it runs on.  Each of those must fail; what makes it fail is the job
 * sandbox, not the guest kernel.  The host errno is printed as "errno N" for the test to check.
 *
 * host-rights.h (written by the test) names the paths, the Redis port and the host's identity.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "../kselftest.h"
#include "host-rights.h"

/* arch/x86/Makefile.um: x86_64 UML is linked (-no-pie) at this address, ELF header included. */
#define UML_START 0x60000000UL

/*
 * host_syscall(gadget, nr, a1..a5): loads the system call registers and jumps to `gadget`, a
 * `syscall; ret` in the UML binary, whose `ret` returns straight to our caller.
 */
long host_syscall(const void *gadget, long nr, long a1, long a2, long a3, long a4, long a5);
__asm__(".text\n"
	".global host_syscall\n"
	".type host_syscall, @function\n"
	"host_syscall:\n"
	"	mov %rdi, %r11\n"
	"	mov %rsi, %rax\n"
	"	mov %rdx, %rdi\n"
	"	mov %rcx, %rsi\n"
	"	mov %r8, %rdx\n"
	"	mov %r9, %r10\n"
	"	mov 8(%rsp), %r8\n"
	"	jmp *%r11\n");

static const unsigned char *gadget;

static long host(long nr, long a1, long a2, long a3, long a4, long a5)
{
	return host_syscall(gadget, nr, a1, a2, a3, a4, a5);
}

/* A `syscall; ret` (0f 05 c3) in an executable segment of the UML binary. */
static const unsigned char *find_gadget(void)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)UML_START;
	const Elf64_Phdr *ph;

	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_type != ET_EXEC)
		return NULL;
	ph = (const Elf64_Phdr *)(UML_START + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++) {
		const unsigned char *p, *end;

		if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_X))
			continue;
		p = (const unsigned char *)ph[i].p_vaddr;
		end = p + ph[i].p_filesz - 2;
		for (; p < end; p++)
			if (p[0] == 0x0f && p[1] == 0x05 && p[2] == 0xc3)
				return p;
	}
	return NULL;
}

/* ok if the host refused (a negative errno), with the errno in a diagnostic. */
static void refused(long r, const char *what)
{
	if (r < 0)
		ksft_print_msg("%s: errno %ld (%s)\n", what, -r, strerror(-r));
	else
		ksft_print_msg("%s: succeeded (%ld)\n", what, r);
	ksft_test_result(r < 0, "%s fails\n", what);
}

int main(void)
{
	struct utsname host_uts, guest_uts;
	struct sockaddr_in redis = { .sin_family = AF_INET, .sin_port = htons(REDIS_PORT) };
	char buf[64] = "";
	long r, fd, hpid, huid;
	int gfd;

	ksft_print_header();
	ksft_set_plan(8);

	gadget = find_gadget();
	if (!gadget)
		ksft_exit_fail_msg("no syscall; ret in the UML binary at %#lx\n", UML_START);
	ksft_test_result_pass("found a syscall instruction in the UML binary's text at %p\n", (const void *)gadget);

	huid = host(SYS_getuid, 0, 0, 0, 0, 0);
	ksft_print_msg("host getuid %ld, guest getuid %d\n", huid, (int)getuid());
	ksft_test_result(huid == SANDBOX_UID && getuid() == 0, "host getuid is the sandbox's uid, not the guest's\n");

	hpid = host(SYS_getpid, 0, 0, 0, 0, 0);
	r = host(SYS_uname, (long)&host_uts, 0, 0, 0, 0);
	uname(&guest_uts);
	ksft_print_msg("host getpid %ld, guest getpid %d; host release %s, guest release %s\n", hpid, (int)getpid(),
		       r == 0 ? host_uts.release : "?", guest_uts.release);
	ksft_test_result(r == 0 && hpid != getpid() && !strcmp(host_uts.release, HOST_RELEASE) &&
			 strcmp(guest_uts.release, HOST_RELEASE),
			 "host getpid and uname are the host's, not the guest's\n");

	/* A file written through the host where the sandbox allows it appears in the guest. */
	fd = host(SYS_openat, AT_FDCWD, (long)HOST_PROOF_PATH, O_WRONLY | O_CREAT | O_TRUNC, 0644, 0);
	r = fd >= 0 ? host(SYS_write, fd, (long)"host write\n", 11, 0, 0) : fd;
	if (fd >= 0)
		host(SYS_close, fd, 0, 0, 0, 0);
	gfd = open(GUEST_PROOF_PATH, O_RDONLY);
	if (gfd >= 0) {
		if (read(gfd, buf, sizeof(buf) - 1) < 0)
			buf[0] = 0;
		close(gfd);
	}
	ksft_print_msg("host openat(%s) %ld, write %ld; the guest reads %s: \"%.11s\"\n", HOST_PROOF_PATH, fd, r,
		       GUEST_PROOF_PATH, buf);
	ksft_test_result(r == 11 && !strcmp(buf, "host write\n"), "a file written through the host appears in the guest\n");

	refused(host(SYS_openat, AT_FDCWD, (long)HOST_READ_PATH, O_RDONLY, 0, 0), "reading host file " HOST_READ_PATH);

	fd = host(SYS_socket, AF_INET, SOCK_STREAM, 0, 0, 0);
	if (fd < 0) {
		refused(fd, "a host socket for the service's Redis");
	} else {
		redis.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		r = host(SYS_connect, fd, (long)&redis, sizeof(redis), 0, 0);
		host(SYS_close, fd, 0, 0, 0, 0);
		refused(r, "connecting to the service's Redis on 127.0.0.1");
	}

	fd = host(SYS_openat, AT_FDCWD, (long)HOST_WRITE_PATH, O_WRONLY | O_CREAT | O_EXCL, 0644, 0);
	if (fd >= 0)
		host(SYS_close, fd, 0, 0, 0, 0);
	refused(fd, "creating host file " HOST_WRITE_PATH);

	fd = host(SYS_openat, AT_FDCWD, (long)HOST_KERNEL_PATH, O_WRONLY | O_APPEND, 0, 0);
	if (fd >= 0)
		host(SYS_close, fd, 0, 0, 0, 0);
	refused(fd, "writing the kernel's build directory " HOST_KERNEL_PATH);

	ksft_finished();
}
