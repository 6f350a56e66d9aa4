// SPDX-License-Identifier: GPL-2.0
/*
 * Threads as a kselftest sees them: created, synchronised (mutex, barrier, condition variable),
 * each with its own TLS and thread id, and joined with their results.  On a no-MMU kernel this
 * needs a libc whose pthread_create() does without mprotect() (musl): glibc's fails there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../kselftest.h"

#define THREADS 8
#define ROUNDS 20000
#define PINGPONGS 1000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t barrier;
static long counter;
static int arrived;
static int arrived_seen[THREADS];
static pid_t tids[THREADS];
static __thread long mine;

static pthread_cond_t turn_changed = PTHREAD_COND_INITIALIZER;
static int turn;

static void *worker(void *arg)
{
	long id = (long)arg;

	mine = id * 1000;
	tids[id] = syscall(SYS_gettid);
	for (int i = 0; i < ROUNDS; i++) {
		pthread_mutex_lock(&lock);
		counter++;
		pthread_mutex_unlock(&lock);
	}
	pthread_mutex_lock(&lock);
	arrived++;
	pthread_mutex_unlock(&lock);
	pthread_barrier_wait(&barrier);
	/* Past the barrier every thread must see all of them arrived. */
	pthread_mutex_lock(&lock);
	arrived_seen[id] = arrived;
	pthread_mutex_unlock(&lock);
	sched_yield();
	if (mine != id * 1000)
		return (void *)-1L;
	return (void *)(id + 100);
}

/* Two threads hand a turn back and forth through one condition variable. */
static void *pingpong(void *arg)
{
	int me = (int)(long)arg;

	for (int i = 0; i < PINGPONGS; i++) {
		pthread_mutex_lock(&lock);
		while (turn != me)
			pthread_cond_wait(&turn_changed, &lock);
		turn = !me;
		pthread_cond_broadcast(&turn_changed);
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

int main(void)
{
	pthread_t th[THREADS], pp[2];
	int created = 0, joined = 0, ok_results = 0, ok_arrivals = 0, distinct = 1, err = 0;
	void *ret;

	ksft_print_header();
	ksft_set_plan(6);

	pthread_barrier_init(&barrier, NULL, THREADS);
	mine = -1;
	for (long i = 0; i < THREADS; i++) {
		err = pthread_create(&th[i], NULL, worker, (void *)i);
		if (err) {
			ksft_print_msg("pthread_create %ld: %s\n", i, strerror(err));
			break;
		}
		created++;
	}
	ksft_test_result(created == THREADS, "pthread_create starts %d threads\n", THREADS);
	if (created != THREADS)
		ksft_exit_fail_msg("cannot go on without the threads (%d of %d started)\n", created, THREADS);

	for (int i = 0; i < THREADS; i++) {
		if (pthread_join(th[i], &ret) == 0)
			joined++;
		if (ret == (void *)(long)(i + 100))
			ok_results++;
		if (arrived_seen[i] == THREADS)
			ok_arrivals++;
		for (int j = 0; j < i; j++)
			if (tids[j] == tids[i] || tids[i] <= 0)
				distinct = 0;
	}
	ksft_test_result(joined == THREADS && ok_results == THREADS,
			 "pthread_join returns each thread's result (%d of %d)\n", ok_results, THREADS);
	ksft_test_result(counter == (long)THREADS * ROUNDS, "a mutex keeps %d concurrent increments exact (%ld)\n",
			 THREADS * ROUNDS, counter);
	ksft_test_result(ok_arrivals == THREADS, "a barrier holds every thread until all arrive (%d of %d)\n",
			 ok_arrivals, THREADS);
	ksft_test_result(distinct && mine == -1 && tids[0] != getpid(),
			 "each thread has its own thread id and TLS\n");

	for (long i = 0; i < 2; i++)
		if (pthread_create(&pp[i], NULL, pingpong, (void *)i))
			ksft_exit_fail_msg("pthread_create for the condition variable test failed\n");
	for (int i = 0; i < 2; i++)
		pthread_join(pp[i], NULL);
	ksft_test_result(turn == 0, "a condition variable hands a turn back and forth %d times\n", 2 * PINGPONGS);

	ksft_finished();
}
