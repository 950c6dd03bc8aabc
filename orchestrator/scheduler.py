"""Job scheduling on one machine: one kernel build at a time, guests concurrently.

A build already uses every core (make -jN), so a second build at once only splits them:
builds run one after another (and the build lock keeps other kto processes out too).
A guest is a fixed load (its vCPUs and its RAM), so guests run beside the build and beside
each other, as many as the cores and memory allow. Builds run niced (build.py): a guest's
timeouts matter, a build has none to miss.

The caller's thread runs the builds, so Ctrl-C and SIGTERM arrive where they can stop
make; the guest side runs on worker threads. On any interruption every guest is killed
before the exception goes on.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
B = TypeVar("B")

QEMU_OVERHEAD_MB = 384     # QEMU's own RSS beside the guest RAM under TCG (measured ~300)
HOST_RESERVE_MB = 2048     # for the build (cc1 with KASAN peaks near 1 GiB per job) and kto


def mem_available_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 0


def guest_slots(memory_mb: int, cpus: int, cores: int | None = None,
                available_mb: int | None = None) -> int:
    """How many guests of ``memory_mb`` and ``cpus`` fit at once: each TCG vCPU is a busy
    host thread, so no more vCPUs than cores, and no more RAM than is available after the
    build's share. Always at least 1: a job must be able to run."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    available_mb = available_mb if available_mb is not None else mem_available_mb()
    by_cpu = cores // max(1, cpus)
    by_mem = (available_mb - HOST_RESERVE_MB) // (memory_mb + QEMU_OVERHEAD_MB)
    return max(1, min(by_cpu, by_mem))


def run(jobs: Iterable[T], build: Callable[[T], B | None], test: Callable[[T, B], None],
        guests: int, on_interrupt: Callable[[], None] = lambda: None) -> None:
    """For each job in order, ``build(job)`` on this thread; when it returns something
    (not None: the kernel is there), ``test(job, built)`` on one of ``guests`` worker
    threads while the next job builds. Returns when every test has finished. An exception
    from ``build`` or ``test`` (KtoError is the caller's to catch inside them) ends the
    run; on any exception, including KeyboardInterrupt, ``on_interrupt`` runs (it kills
    the guests) before the pool is drained and the exception re-raised."""
    pool = ThreadPoolExecutor(max_workers=max(1, guests), thread_name_prefix="kto-guest")
    running: set[Future] = set()
    slots = threading.Semaphore(max(1, guests))
    try:
        for job in jobs:
            built = build(job)
            _reap(running)
            if built is None:
                continue
            # Wait for a free guest slot before building further ahead: a queue of built
            # jobs would only hold artifacts on disk without getting anything done sooner.
            while not slots.acquire(timeout=0.5):
                _reap(running)
            fut = pool.submit(_release_after, slots, test, job, built)
            running.add(fut)
        while running:
            # A bounded wait: a process-directed SIGINT may land on a guest thread, and the
            # main thread only runs Python's handler once it is back in bytecode.
            done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
            _reap(done)
            running -= done
    except BaseException:
        on_interrupt()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)   # queued tests never start


def _release_after(slots: threading.Semaphore, test, job, built) -> None:
    try:
        test(job, built)
    finally:
        slots.release()


def _reap(futures: Iterable[Future]) -> None:
    """Re-raise the first exception of a finished test (the caller's ``test`` records
    expected faults itself: anything reaching here is a bug or an interruption)."""
    for f in list(futures):
        if f.done() and not f.cancelled() and f.exception() is not None:
            raise f.exception()
