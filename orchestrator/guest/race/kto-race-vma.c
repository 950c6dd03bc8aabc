/* kto-race-vma: page faults against munmap, mremap, mprotect and MADV_DONTNEED of the
 * same VMA (the per-VMA lock paths: a fault holding a VMA's read lock while another
 * thread detaches, moves or frees it).
 *
 * One slot of SLOT_PAGES pages inside a private PROT_NONE reservation (so an unmapped
 * slot is never reused by anything else). Roles, -t threads each:
 *   fault    touch random pages of the slot (write; SIGSEGV while it is gone is expected)
 *   mapper   munmap + mmap the slot again, alternately anonymous and a shared memfd
 *   mover    mremap the slot to a second address and back (moves its page tables)
 *   changer  mprotect read-only and back, MADV_DONTNEED a random part
 *
 * The slot is large (1024 pages) so the faulters are still faulting pages in when the
 * next munmap/mremap comes: with 64 pages every page was present again within a few
 * hundred touches and the faulters sat outside the fault path for most of each cycle.
 * Measured on the vma-unmap-nowait example (bench/race_catch.py, x86_64 debug-VM, TCG):
 * caught in 1 of 5 runs with 64 pages, 6 of 6 with 1024, the stock kernel clean.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include "race.h"

#define SLOT_PAGES 1024

static long page;
static size_t slot_len;
static char *slot, *other;	/* the slot and where mover puts it for a moment */
static int memfd = -1;

static struct counter c[] = {
	{"touches"}, {"segv"}, {"munmap"}, {"mmap_anon"}, {"mmap_shared"}, {"mremap"},
	{"mprotect"}, {"dontneed"},
};
enum { FAULTS, SEGV, MUNMAP, MMAP_ANON, MMAP_SHARED, MREMAP, MPROTECT, DONTNEED };

/* The slot's mapping is changed by one thread at a time (the race is with faults). */
static pthread_mutex_t layout = PTHREAD_MUTEX_INITIALIZER;

static void map_slot(int shared)
{
	void *p = shared ? mmap(slot, slot_len, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_FIXED_NOREPLACE, memfd, 0)
			 : mmap(slot, slot_len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != slot)
		fail("mmap slot (%s)", shared ? "shared" : "anon");
	atomic_fetch_add(&c[shared ? MMAP_SHARED : MMAP_ANON].n, 1);
}

static void *fault_thread(void *arg)
{
	unsigned int seed = 0x1234567u + (unsigned int)*(long *)arg * 7919u;
	sigjmp_buf jb;
	volatile unsigned long n = 0;

	fault_jmp = &jb;
	if (sigsetjmp(jb, 1))
		atomic_fetch_add(&c[SEGV].n, 1);
	while (!stopping()) {
		char *p = slot + (rnd(&seed) % SLOT_PAGES) * page;

		*(volatile char *)p += 1;
		if (++n % 64 == 0)
			atomic_fetch_add(&c[FAULTS].n, 64);
	}
	fault_jmp = NULL;
	return NULL;
}

static void *mapper_thread(void *arg)
{
	int shared = 0;

	(void)arg;
	while (!stopping()) {
		pthread_mutex_lock(&layout);
		if (munmap(slot, slot_len))
			fail("munmap slot");
		atomic_fetch_add(&c[MUNMAP].n, 1);
		map_slot(shared);
		pthread_mutex_unlock(&layout);
		shared = !shared;
	}
	return NULL;
}

static void *mover_thread(void *arg)
{
	(void)arg;
	while (!stopping()) {
		pthread_mutex_lock(&layout);
		/* other is PROT_NONE reservation: MREMAP_FIXED replaces it, and moving back
		 * leaves a hole there, which a PROT_NONE mapping fills again. */
		if (mremap(slot, slot_len, slot_len, MREMAP_MAYMOVE | MREMAP_FIXED, other) != other)
			fail("mremap slot away");
		else if (mremap(other, slot_len, slot_len, MREMAP_MAYMOVE | MREMAP_FIXED, slot)
			 != slot)
			fail("mremap slot back");
		else if (mmap(other, slot_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
			      MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0) != other)
			fail("mmap reservation");
		else
			atomic_fetch_add(&c[MREMAP].n, 1);
		pthread_mutex_unlock(&layout);
	}
	return NULL;
}

static void *changer_thread(void *arg)
{
	unsigned int seed = 0xabcdefu + (unsigned int)*(long *)arg;

	while (!stopping()) {
		size_t off = (rnd(&seed) % SLOT_PAGES) * page;
		size_t len = (1 + rnd(&seed) % 8) * page;

		if (off + len > slot_len)
			len = slot_len - off;
		pthread_mutex_lock(&layout);
		if (mprotect(slot, slot_len, PROT_READ) || mprotect(slot, slot_len,
								    PROT_READ | PROT_WRITE))
			fail("mprotect slot");
		else
			atomic_fetch_add(&c[MPROTECT].n, 1);
		pthread_mutex_unlock(&layout);
		/* Outside the lock: races munmap too (EINVAL/ENOMEM-free: the range is ours). */
		if (madvise(slot + off, len, MADV_DONTNEED) == 0)
			atomic_fetch_add(&c[DONTNEED].n, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	char *res;

	parse_options(argc, argv);
	page = sysconf(_SC_PAGESIZE);
	slot_len = SLOT_PAGES * page;
	memfd = memfd_create("kto-race-vma", 0);
	if (memfd < 0 || ftruncate(memfd, slot_len))
		skip("memfd_create/ftruncate failed");
	/* Reservation: [guard][slot][guard][other][guard], all PROT_NONE until used. */
	res = mmap(NULL, 5 * slot_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (res == MAP_FAILED) {
		fail("mmap reservation");
		return KSFT_FAIL;
	}
	slot = res + slot_len;
	other = res + 3 * slot_len;
	munmap(slot, slot_len);
	map_slot(0);
	catch_faults();

	struct role roles[] = {
		{fault_thread, opt_threads}, {mapper_thread, opt_threads},
		{mover_thread, opt_threads}, {changer_thread, opt_threads},
	};
	run_roles(roles, 4);
	print_counters("kto-race-vma", c, sizeof(c) / sizeof(c[0]));
	if (!atomic_load(&failed) && !atomic_load(&c[FAULTS].n)) {
		printf("FAIL: no page was touched\n");
		return KSFT_FAIL;
	}
	return atomic_load(&failed) ? KSFT_FAIL : KSFT_PASS;
}
