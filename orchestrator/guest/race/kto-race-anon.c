/* kto-race-anon: fork/exit of processes sharing anonymous pages (anon_vma chains, CoW)
 * against the walkers of those pages: reclaim (MADV_PAGEOUT / MADV_COLD walk the rmap),
 * migration (compaction migrates movable anon pages; move_pages(2) where the kernel has
 * NUMA), and /proc/PID/smaps, mincore and MADV_DONTNEED on the parent's side.
 *
 * Roles, -t threads each:
 *   forker   fork; the child writes to random pages (CoW), maybe forks a grandchild,
 *            and exits; the parent reaps it
 *   reclaim  MADV_PAGEOUT or MADV_COLD on a random part of the region
 *   migrate  move_pages(2) of random pages to node 0 (no-op moves still look them up),
 *            and with -g, every 2 s (one thread) /proc/sys/vm/compact_memory, which
 *            really migrates anonymous pages
 *   walker   read /proc/self/smaps, mincore the region, MADV_DONTNEED a few pages, and
 *            touch them again
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "race.h"

#define REGION_PAGES 2048	/* 8 MiB with 4 KiB pages */
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE (1 << 1)
#endif

static long page;
static size_t region_len;
static char *region;
static int have_move_pages = 1, have_pageout = 1;

static struct counter c[] = {
	{"forks"}, {"pageout"}, {"cold"}, {"move_pages"}, {"compact"}, {"smaps"},
	{"mincore"}, {"dontneed"},
};
enum { FORKS, PAGEOUT, COLD, MOVE_PAGES, COMPACT, SMAPS, MINCORE, DONTNEED };

static void child_body(unsigned int seed, int depth)
{
	for (int i = 0; i < 64; i++)
		region[(rnd(&seed) % REGION_PAGES) * page] += 1;
	if (depth == 0 && rnd(&seed) % 4 == 0) {
		pid_t g = fork();

		if (g == 0) {
			child_body(seed * 31u, 1);
			_exit(0);
		}
		if (g > 0)
			waitpid(g, NULL, 0);
	}
}

static void *forker_thread(void *arg)
{
	unsigned int seed = 0x51ed27u + (unsigned int)*(long *)arg * 104729u;

	while (!stopping()) {
		pid_t pid = fork();

		if (pid == 0) {
			child_body(rnd(&seed), 0);
			_exit(0);
		}
		if (pid < 0) {
			if (errno == EAGAIN || errno == ENOMEM) {
				usleep(1000);
				continue;
			}
			fail("fork");
			break;
		}
		int status;

		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
			errno = ECHILD;
			fail("child %d did not exit cleanly (status %#x)", pid, status);
			break;
		}
		atomic_fetch_add(&c[FORKS].n, 1);
	}
	return NULL;
}

static void *reclaim_thread(void *arg)
{
	unsigned int seed = 0x7f4a7c15u + (unsigned int)*(long *)arg;

	while (!stopping()) {
		size_t off = (rnd(&seed) % REGION_PAGES) * page;
		size_t len = (1 + rnd(&seed) % 256) * page;
		int advice = rnd(&seed) % 2 ? MADV_PAGEOUT : MADV_COLD;

		if (off + len > region_len)
			len = region_len - off;
		if (!have_pageout)
			advice = MADV_DONTNEED;
		if (madvise(region + off, len, advice) == 0)
			atomic_fetch_add(&c[advice == MADV_COLD ? COLD : PAGEOUT].n, 1);
		else if (errno == EINVAL)
			have_pageout = 0;	/* kernel without MADV_PAGEOUT/COLD */
		else
			fail("madvise(%d)", advice);
	}
	return NULL;
}

static void *migrate_thread(void *arg)
{
	long id = *(long *)arg;
	unsigned int seed = 0x2545f491u + (unsigned int)id;
	struct timespec last = {0}, now;
	void *pages[16];
	int nodes[16], status[16];

	while (!stopping()) {
		if (have_move_pages) {
			for (int i = 0; i < 16; i++) {
				pages[i] = region + (rnd(&seed) % REGION_PAGES) * page;
				nodes[i] = 0;
			}
			if (syscall(SYS_move_pages, 0, 16UL, pages, nodes, status, MPOL_MF_MOVE) >= 0)
				atomic_fetch_add(&c[MOVE_PAGES].n, 1);
			else if (errno == ENOSYS)
				have_move_pages = 0;	/* no CONFIG_NUMA */
			else if (errno != ENOENT && errno != EBUSY && errno != ENOMEM)
				fail("move_pages");
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (opt_guest && id % opt_threads == 0 && now.tv_sec - last.tv_sec >= 2) {
			int fd = open("/proc/sys/vm/compact_memory", O_WRONLY);

			last = now;
			if (fd >= 0) {
				if (write(fd, "1", 1) == 1)
					atomic_fetch_add(&c[COMPACT].n, 1);
				close(fd);
			}
		}
		if (!have_move_pages)
			usleep(10000);
	}
	return NULL;
}

static void *walker_thread(void *arg)
{
	unsigned int seed = 0x3c6ef372u + (unsigned int)*(long *)arg;
	unsigned char vec[REGION_PAGES];

	while (!stopping()) {
		if (read_smaps())
			break;
		atomic_fetch_add(&c[SMAPS].n, 1);
		if (mincore(region, region_len, vec))
			fail("mincore");
		else
			atomic_fetch_add(&c[MINCORE].n, 1);
		size_t off = (rnd(&seed) % (REGION_PAGES - 4)) * page;

		if (madvise(region + off, 4 * page, MADV_DONTNEED))
			fail("madvise(MADV_DONTNEED)");
		for (int i = 0; i < 4; i++)
			region[off + i * page] = 1;
		atomic_fetch_add(&c[DONTNEED].n, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	parse_options(argc, argv);
	page = sysconf(_SC_PAGESIZE);
	region_len = REGION_PAGES * page;
	region = mmap(NULL, region_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	if (region == MAP_FAILED) {
		fail("mmap region");
		return KSFT_FAIL;
	}
	/* Half of it may become THPs (split by CoW, partial DONTNEED and migration). */
	madvise(region, region_len / 2, MADV_HUGEPAGE);
	for (size_t off = 0; off < region_len; off += page)
		region[off] = 1;

	struct role roles[] = {
		{forker_thread, opt_threads}, {reclaim_thread, opt_threads},
		{migrate_thread, opt_threads}, {walker_thread, opt_threads},
	};
	run_roles(roles, 4);
	print_counters("kto-race-anon", c, sizeof(c) / sizeof(c[0]));
	if (!have_move_pages)
		printf("note: move_pages(2) is not in this kernel (no CONFIG_NUMA)\n");
	if (!atomic_load(&failed) && !atomic_load(&c[FORKS].n)) {
		printf("FAIL: no fork completed\n");
		return KSFT_FAIL;
	}
	return atomic_load(&failed) ? KSFT_FAIL : KSFT_PASS;
}
