// SPDX-License-Identifier: GPL-2.0
/*
 * Start-up code that turns a program with its own _start (nolibc, or
 * -nostartfiles like the size kselftest) into a working static-pie
 * executable.  Without an MMU, programs must be position independent, and a
 * static-pie program must apply its own relative relocations before any
 * pointer in its data is used: musl's rcrt1.o and glibc do, nolibc and
 * hand-written _start functions do not.
 * Link with -static-pie -Wl,-e,_start_pie: this relocates the program and
 * jumps to its _start with the kernel's stack and %rdx (the ABI's exit
 * function pointer) untouched.  In front of a libc's own start-up code it is
 * harmless: applying a RELATIVE relocation again writes the same value.
 * No includes: it is compiled with nolibc's -nostdinc, whose headers have no <elf.h>.
 */
#define DT_NULL			0
#define DT_RELA			7
#define DT_RELASZ		8
#define R_X86_64_RELATIVE	8
#define ELF64_R_TYPE(i)		((i) & 0xffffffff)

typedef struct {
	long d_tag;
	union {
		unsigned long d_val;
		unsigned long d_ptr;
	} d_un;
} Elf64_Dyn;

typedef struct {
	unsigned long r_offset;
	unsigned long r_info;
	long r_addend;
} Elf64_Rela;

extern const Elf64_Dyn _DYNAMIC[] __attribute__((visibility("hidden")));
extern const char __ehdr_start[] __attribute__((visibility("hidden")));

/* Only rip-relative addressing here: nothing is relocated yet. */
__attribute__((used, visibility("hidden"))) void pie_relocate(void)
{
	unsigned long base = (unsigned long)__ehdr_start;
	const Elf64_Rela *rela = 0;
	unsigned long size = 0;
	const Elf64_Dyn *d;

	for (d = _DYNAMIC; d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_RELA)
			rela = (const Elf64_Rela *)(base + d->d_un.d_ptr);
		else if (d->d_tag == DT_RELASZ)
			size = d->d_un.d_val;
	}
	for (; size >= sizeof(*rela); rela++, size -= sizeof(*rela))
		if (ELF64_R_TYPE(rela->r_info) == R_X86_64_RELATIVE)
			*(unsigned long *)(base + rela->r_offset) = base + rela->r_addend;
}

__asm__(".text\n"
	".global _start_pie\n"
	".type _start_pie, @function\n"
	"_start_pie:\n"
	"	push %rdx\n"		/* %rsp is 16-byte aligned at entry, */
	"	push %rdx\n"		/* and must be again at the call */
	"	call pie_relocate\n"
	"	pop %rdx\n"
	"	pop %rdx\n"
	"	jmp _start\n");
