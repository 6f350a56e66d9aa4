// SPDX-License-Identifier: GPL-2.0
/* Scratch test (not part of the series): no-MMU uaccess fault handling */
#include <kunit/test.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/uaccess.h>
#include <linux/futex.h>
#include <asm/futex.h>
#include <os.h>

static bool oops;
module_param(oops, bool, 0444);

struct ctx {
	char *pages;	/* two pages: first readable, second PROT_NONE */
};

static int scratch_init(struct kunit *test)
{
	struct ctx *c = kunit_kzalloc(test, sizeof(*c), GFP_KERNEL);

	c->pages = (char *)__get_free_pages(GFP_KERNEL, 1);
	KUNIT_ASSERT_NOT_NULL(test, c->pages);
	memset(c->pages, 'a', PAGE_SIZE);
	KUNIT_ASSERT_EQ(test, os_protect_memory(c->pages + PAGE_SIZE, PAGE_SIZE, 0, 0, 0), 0);
	test->priv = c;
	return 0;
}

static void scratch_exit(struct kunit *test)
{
	struct ctx *c = test->priv;

	os_protect_memory(c->pages + PAGE_SIZE, PAGE_SIZE, 1, 1, 1);
	free_pages((unsigned long)c->pages, 1);
}

static void uaccess_faults(struct kunit *test)
{
	struct ctx *c = test->priv;
	char __user *bad = (char __user *)(c->pages + PAGE_SIZE);
	char __user *edge = bad - 8;
	char buf[32];
	u32 v;
	int oval;

	memset(buf, 'x', sizeof(buf));
	KUNIT_EXPECT_EQ(test, copy_from_user(buf, bad, 16), 16UL);
	KUNIT_EXPECT_EQ(test, copy_to_user(bad, buf, 16), 16UL);
	/* 8 readable bytes, then the protected page */
	KUNIT_EXPECT_EQ(test, raw_copy_from_user(buf, edge, 16), 8UL);
	KUNIT_EXPECT_EQ(test, buf[0], 'a');
	KUNIT_EXPECT_EQ(test, raw_copy_to_user(edge, buf, 16), 8UL);
	KUNIT_EXPECT_EQ(test, clear_user(edge, 16), 8UL);
	KUNIT_EXPECT_EQ(test, c->pages[PAGE_SIZE - 1], 0);
	memset(c->pages + PAGE_SIZE - 8, 'b', 8);
	KUNIT_EXPECT_EQ(test, strncpy_from_user(buf, edge, 16), (long)-EFAULT);
	KUNIT_EXPECT_EQ(test, strnlen_user(edge, 16), 0L);
	KUNIT_EXPECT_EQ(test, get_user(v, (u32 __user *)bad), -EFAULT);
	KUNIT_EXPECT_EQ(test, put_user(v, (u32 __user *)bad), -EFAULT);
	KUNIT_EXPECT_EQ(test, arch_futex_atomic_op_inuser(FUTEX_OP_ADD, 1, &oval, (u32 __user *)bad), -EFAULT);
	KUNIT_EXPECT_EQ(test, futex_atomic_cmpxchg_inatomic(&v, (u32 __user *)bad, 0, 1), -EFAULT);
	/* outside physical memory: access_ok() refuses */
	KUNIT_EXPECT_EQ(test, copy_from_user(buf, (void __user *)0x10, 8), 8UL);
	KUNIT_EXPECT_FALSE(test, access_ok((void __user *)0x10, 8));
	KUNIT_EXPECT_TRUE(test, access_ok((void __user *)c->pages, 8));
}

static void uaccess_works(struct kunit *test)
{
	struct ctx *c = test->priv;
	char __user *u = (char __user *)c->pages;
	char buf[64];
	u32 *w = (u32 *)c->pages, v;
	int oval;

	memset(buf, 'z', sizeof(buf));
	KUNIT_EXPECT_EQ(test, copy_to_user(u + 3, buf, 37), 0UL);
	KUNIT_EXPECT_EQ(test, c->pages[3 + 36], 'z');
	KUNIT_EXPECT_EQ(test, c->pages[3 + 37], 'a');
	strcpy(c->pages, "hello");
	KUNIT_EXPECT_EQ(test, strncpy_from_user(buf, u, 64), 5L);
	KUNIT_EXPECT_STREQ(test, buf, "hello");
	KUNIT_EXPECT_EQ(test, strnlen_user(u, 64), 6L);
	KUNIT_EXPECT_EQ(test, strncpy_from_user(buf, u, 3), 3L);
	KUNIT_EXPECT_EQ(test, clear_user(u, 5), 0UL);
	KUNIT_EXPECT_EQ(test, c->pages[4], 0);
	*w = 5;
	KUNIT_EXPECT_EQ(test, arch_futex_atomic_op_inuser(FUTEX_OP_ADD, 2, &oval, (u32 __user *)w), 0);
	KUNIT_EXPECT_EQ(test, oval, 5);
	KUNIT_EXPECT_EQ(test, *w, 7U);
	KUNIT_EXPECT_EQ(test, futex_atomic_cmpxchg_inatomic(&v, (u32 __user *)w, 7, 9), 0);
	KUNIT_EXPECT_EQ(test, v, 7U);
	KUNIT_EXPECT_EQ(test, *w, 9U);
	if (oops) {
		kunit_info(test, "dereferencing a PROT_NONE kernel page on purpose\n");
		*(volatile char *)(c->pages + PAGE_SIZE) = 1;
	}
}

static struct kunit_case cases[] = {
	KUNIT_CASE(uaccess_faults),
	KUNIT_CASE(uaccess_works),
	{}
};

static struct kunit_suite suite = {
	.name = "nommu_scratch",
	.init = scratch_init,
	.exit = scratch_exit,
	.test_cases = cases,
};
kunit_test_suite(suite);
