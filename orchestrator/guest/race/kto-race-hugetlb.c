/* kto-race-hugetlb: shared hugetlb mappings whose page tables are unshared while other
 * threads and processes walk them (huge_pmd_unshare() against huge_pte_offset() users).
 *
 * PMD sharing needs a MAP_SHARED hugetlb mapping covering a whole PUD_SIZE-aligned range
 * (1 GiB with 4 KiB pages on x86_64, arm64 and riscv64) in two or more processes, at the
 * same file offset. Every process here maps one 1 GiB hugetlb memfd at the same 1 GiB
 * aligned address (MAP_NORESERVE: only the NPAGES pages touched need the pool). Each of
 * PROCS processes runs -t threads of each role:
 *   fault    touch the first NPAGES huge pages (faults share the PMD page of a sibling)
 *   unshare  MADV_DONTNEED a page, mprotect a 2 MiB piece (splits the VMA: unshares the
 *            PMD), or replace the whole mapping (munmap + mmap at the same address)
 *   walker   /proc/self/smaps, mincore, move_pages(2) (with NUMA), and
 *            process_vm_readv(2) of a sibling's mapping (GUP on its page tables)
 * Exit 4 (skip) when the pool cannot give NPAGES huge pages.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include "race.h"

#define PUD_SZ (1UL << 30)
#define NPAGES 4
#define PROCS 2
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4U
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE (1 << 1)
#endif

static unsigned long hpage;
static char *base;			/* the same address in every process */
static int memfd;
static pid_t siblings[PROCS];
static int me;
static int have_move_pages = 1, have_vm_readv = 1;

static struct counter c[] = {
	{"touches"}, {"faults_lost"}, {"dontneed"}, {"mprotect_split"}, {"remap"},
	{"smaps"}, {"mincore"}, {"move_pages"}, {"vm_readv"},
};
enum { TOUCH, LOST, DONTNEED, SPLIT, REMAP, SMAPS, MINCORE, MOVE, READV };

static pthread_mutex_t layout = PTHREAD_MUTEX_INITIALIZER;

static int map_all(int flags)
{
	return mmap(base, PUD_SZ, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE | flags,
		    memfd, 0) == base ? 0 : -1;
}

static void *fault_thread(void *arg)
{
	unsigned int seed = 0x9e3779b9u + (unsigned int)*(long *)arg * 31u + me;
	sigjmp_buf jb;

	fault_jmp = &jb;
	if (sigsetjmp(jb, 1))
		atomic_fetch_add(&c[LOST].n, 1);	/* the mapping was replaced under us */
	while (!stopping()) {
		char *p = base + (rnd(&seed) % NPAGES) * hpage + (rnd(&seed) % 512) * 4096;

		*(volatile char *)p += 1;
		atomic_fetch_add(&c[TOUCH].n, 1);
	}
	fault_jmp = NULL;
	return NULL;
}

static void *unshare_thread(void *arg)
{
	unsigned int seed = 0x85ebca6bu + (unsigned int)*(long *)arg + me * 17u;

	while (!stopping()) {
		unsigned int what = rnd(&seed) % 3;
		char *p = base + (rnd(&seed) % NPAGES) * hpage;

		pthread_mutex_lock(&layout);
		if (what == 0) {
			if (madvise(p, hpage, MADV_DONTNEED))
				fail("madvise(MADV_DONTNEED) huge page");
			atomic_fetch_add(&c[DONTNEED].n, 1);
		} else if (what == 1) {
			/* A VMA split at a non-PUD boundary unshares every PMD of the range. */
			if (mprotect(p, hpage, PROT_READ) || mprotect(p, hpage, PROT_READ | PROT_WRITE))
				fail("mprotect huge page");
			atomic_fetch_add(&c[SPLIT].n, 1);
		} else {
			if (map_all(MAP_FIXED))
				fail("mmap hugetlb memfd again");
			atomic_fetch_add(&c[REMAP].n, 1);
		}
		pthread_mutex_unlock(&layout);
	}
	return NULL;
}

static void *walker_thread(void *arg)
{
	unsigned int seed = 0xc2b2ae35u + (unsigned int)*(long *)arg + me * 13u;
	void *pages[NPAGES];
	int nodes[NPAGES], status[NPAGES];

	while (!stopping()) {
		if (read_smaps())
			break;
		atomic_fetch_add(&c[SMAPS].n, 1);
		/* mincore of the pages we touch (one vec byte per base page). */
		unsigned char small[NPAGES];

		for (int i = 0; i < NPAGES; i++)
			if (mincore(base + i * hpage, 4096, &small[i]) && errno != ENOMEM)
				fail("mincore");
		atomic_fetch_add(&c[MINCORE].n, 1);
		if (have_move_pages) {
			for (int i = 0; i < NPAGES; i++) {
				pages[i] = base + i * hpage;
				nodes[i] = 0;
			}
			if (syscall(SYS_move_pages, 0, (unsigned long)NPAGES, pages, nodes, status,
				    MPOL_MF_MOVE) >= 0)
				atomic_fetch_add(&c[MOVE].n, 1);
			else if (errno == ENOSYS)
				have_move_pages = 0;
			else if (errno != ENOENT && errno != EBUSY && errno != ENOMEM)
				fail("move_pages");
		}
		/* GUP on a sibling's mapping of the same file. */
		pid_t other = siblings[(me + 1 + rnd(&seed) % (PROCS - 1)) % PROCS];
		char data[256];
		struct iovec local = {data, sizeof(data)};
		struct iovec remote = {base + (rnd(&seed) % NPAGES) * hpage, sizeof(data)};

		if (!have_vm_readv)
			continue;
		if (process_vm_readv(other, &local, 1, &remote, 1, 0) >= 0)
			atomic_fetch_add(&c[READV].n, 1);
		else if (errno == ENOSYS)
			have_vm_readv = 0;	/* no CONFIG_CROSS_MEMORY_ATTACH */
		else if (errno != EFAULT && errno != ESRCH && errno != ENOMEM)
			fail("process_vm_readv");
	}
	return NULL;
}

static int process_main(void)
{
	struct role roles[] = {
		{fault_thread, opt_threads}, {unshare_thread, opt_threads},
		{walker_thread, opt_threads},
	};

	catch_faults();
	run_roles(roles, 3);
	printf("process %d: ", me);
	print_counters("kto-race-hugetlb", c, sizeof(c) / sizeof(c[0]));
	if (!have_move_pages)
		printf("note: move_pages(2) is not in this kernel (no CONFIG_NUMA)\n");
	if (!have_vm_readv)
		printf("note: process_vm_readv(2) is not in this kernel (no "
		       "CONFIG_CROSS_MEMORY_ATTACH)\n");
	return atomic_load(&failed) ? KSFT_FAIL : KSFT_PASS;
}

int main(int argc, char **argv)
{
	char *res;
	int pipefd[2];
	int rc = KSFT_PASS;

	parse_options(argc, argv);
	memfd = memfd_create("kto-race-hugetlb", MFD_HUGETLB);
	if (memfd < 0)
		skip("no hugetlb memfd (CONFIG_HUGETLBFS off?)");
	{
		struct stat st;

		if (fstat(memfd, &st))
			skip("fstat hugetlb memfd");
		hpage = st.st_blksize;
	}
	if (ftruncate(memfd, PUD_SZ))
		skip("cannot size the hugetlb memfd to 1 GiB");
	/* A 1 GiB-aligned 1 GiB window inside a 2 GiB PROT_NONE reservation. */
	res = mmap(NULL, 2 * PUD_SZ, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (res == MAP_FAILED)
		skip("cannot reserve 2 GiB of address space");
	base = (char *)(((unsigned long)res + PUD_SZ - 1) & ~(PUD_SZ - 1));
	if (map_all(MAP_FIXED))
		skip("cannot map the hugetlb memfd");
	/* Fault the pages in once: if the pool is too small, skip (SIGBUS otherwise). */
	{
		sigjmp_buf jb;

		catch_faults();
		fault_jmp = &jb;
		if (sigsetjmp(jb, 1)) {
			fault_jmp = NULL;
			printf("SKIP: the huge page pool cannot give %d pages of %lu KiB\n",
			       NPAGES, hpage >> 10);
			return KSFT_SKIP;
		}
		for (int i = 0; i < NPAGES; i++)
			base[i * hpage] = 1;
		fault_jmp = NULL;
	}
	if (pipe(pipefd))
		skip("pipe");
	/* Children first, so every process knows every sibling's pid. */
	siblings[0] = getpid();
	for (int i = 1; i < PROCS; i++) {
		pid_t pid = fork();

		if (pid < 0)
			skip("fork");
		if (pid == 0) {
			me = i;
			close(pipefd[1]);
			if (read(pipefd[0], siblings, sizeof(siblings)) != sizeof(siblings))
				_exit(KSFT_FAIL);
			_exit(process_main());
		}
		siblings[i] = pid;
	}
	close(pipefd[0]);
	for (int i = 1; i < PROCS; i++)
		if (write(pipefd[1], siblings, sizeof(siblings)) != sizeof(siblings))
			fail("write pids");
	rc = process_main();
	for (int i = 1; i < PROCS; i++) {
		int status;

		if (waitpid(siblings[i], &status, 0) != siblings[i] || !WIFEXITED(status)) {
			printf("FAIL: process %d died (status %#x)\n", i, status);
			rc = KSFT_FAIL;
		} else if (WEXITSTATUS(status) != KSFT_PASS) {
			rc = KSFT_FAIL;
		}
	}
	return rc;
}
