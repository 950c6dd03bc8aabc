/* kto race programs: shared option parsing, deadline, worker threads and counters.
 *
 * Every program runs for -s SECONDS with -t THREADS worker threads per role (both from
 * the workload file), prints one line per operation with how often it ran, and exits
 * with a kselftest status: 0 pass, 1 fail (a syscall failed in a way the race cannot
 * explain), 4 skip (the kernel lacks what the program drives). Kernel bugs show up as
 * reports on the console, which kto reads; the exit status only says the program ran. */
#ifndef KTO_RACE_H
#define KTO_RACE_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

static int opt_seconds = 10;
static int opt_threads = 2;
/* -g: running in a disposable guest, so system-wide knobs may be pulled
 * (/proc/sys/vm/compact_memory); never when run natively as a unit test. */
static int opt_guest;
static atomic_int stop_flag;
static atomic_int failed;

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-s SECONDS] [-t THREADS] [-g]\n", prog);
	exit(2);
}

static void parse_options(int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, "s:t:g")) != -1) {
		char *end;

		if (c == 'g') {
			opt_guest = 1;
			continue;
		}
		long v = strtol(optarg ? optarg : "", &end, 10);

		if (*end || v < 1 || v > 100000)
			usage(argv[0]);
		if (c == 's')
			opt_seconds = v;
		else if (c == 't')
			opt_threads = v;
		else
			usage(argv[0]);
	}
	if (optind != argc)
		usage(argv[0]);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static int stopping(void)
{
	return atomic_load_explicit(&stop_flag, memory_order_relaxed);
}

/* A syscall failed in a way the program does not expect: report it, stop, exit 1. */
static void fail(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	printf("FAIL: ");
	vprintf(fmt, ap);
	printf(": %s\n", strerror(e));
	va_end(ap);
	atomic_store(&failed, 1);
	atomic_store(&stop_flag, 1);
}

/* Read /proc/self/smaps to the end (it walks the page tables of every mapping): 0, or
 * -1 after fail() when it cannot be opened. */
__attribute__((unused)) static int read_smaps(void)
{
	static __thread char buf[65536];
	int fd = open("/proc/self/smaps", O_RDONLY);

	if (fd < 0) {
		fail("open /proc/self/smaps");
		return -1;
	}
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	return 0;
}

__attribute__((unused)) static void skip(const char *why)
{
	printf("SKIP: %s\n", why);
	exit(KSFT_SKIP);
}

/* Cheap per-thread pseudo-random numbers (xorshift). */
static unsigned int rnd(unsigned int *state)
{
	unsigned int x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *state = x ? x : 0x9e3779b9u;
}

/* Counters, one per operation, printed at the end. */
struct counter {
	const char *name;
	atomic_ulong n;
};

static void print_counters(const char *prog, struct counter *c, int n)
{
	printf("%s: %d s, %d thread(s) per role:", prog, opt_seconds, opt_threads);
	for (int i = 0; i < n; i++)
		printf(" %s=%lu", c[i].name, atomic_load(&c[i].n));
	printf("\n");
}

/* Start `count` threads of each role, sleep until the deadline, stop and join them. */
struct role {
	void *(*fn)(void *);
	int count;
};

static void run_roles(struct role *roles, int nroles)
{
	pthread_t tids[256];
	long ids[256];
	int n = 0;

	for (int r = 0; r < nroles; r++)
		for (int i = 0; i < roles[r].count && n < 256; i++, n++) {
			ids[n] = n;
			if (pthread_create(&tids[n], NULL, roles[r].fn, &ids[n])) {
				errno = EAGAIN;
				fail("pthread_create");
				break;
			}
		}
	for (int s = 0; s < opt_seconds * 10 && !stopping(); s++)
		usleep(100000);
	atomic_store(&stop_flag, 1);
	for (int i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
}

/* Faulting threads touch memory another thread may have just unmapped: SIGSEGV/SIGBUS
 * jump back to the thread's recovery point instead of killing the program. */
static __thread sigjmp_buf *fault_jmp;

static void on_fault(int sig)
{
	if (fault_jmp)
		siglongjmp(*fault_jmp, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

__attribute__((unused)) static void catch_faults(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

#endif
