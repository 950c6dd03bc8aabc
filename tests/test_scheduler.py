"""The local scheduler (orchestrator/scheduler.py): builds one at a time on the caller's
thread, guests beside them up to a bound, interruptions stop everything. Timing-free:
overlap and bounds are shown with events and counters, not durations."""
import threading

import pytest

from orchestrator import scheduler


def test_guest_slots_bounded_by_cores_and_memory():
    # 2 cores, 2 vCPUs per guest: one guest, however much memory there is
    assert scheduler.guest_slots(2048, 2, cores=2, available_mb=64000) == 1
    # 16 cores: memory decides (2 GiB reserved, 2 GiB + QEMU per guest)
    per = 2048 + scheduler.QEMU_OVERHEAD_MB
    assert scheduler.guest_slots(2048, 2, cores=16,
                                 available_mb=scheduler.HOST_RESERVE_MB + 3 * per) == 3
    assert scheduler.guest_slots(2048, 2, cores=16, available_mb=64000) == 8
    # nothing fits: still one, a job must be able to run
    assert scheduler.guest_slots(2048, 4, cores=2, available_mb=1000) == 1


def test_builds_in_order_on_the_callers_thread_and_tests_overlap_the_next_build():
    main = threading.current_thread()
    order, events = [], []
    second_build_started = threading.Event()

    def build(j):
        assert threading.current_thread() is main      # Ctrl-C reaches make here
        order.append(j)
        events.append(f"build {j}")
        if j == 2:
            second_build_started.set()
        return f"kernel-{j}"

    def test(j, built):
        assert threading.current_thread() is not main and built == f"kernel-{j}"
        if j == 1:
            # job 1's guest is still running when job 2's build starts
            assert second_build_started.wait(10), "build 2 waited for guest 1"
        events.append(f"test {j}")

    scheduler.run([1, 2, 3], build, test, guests=1)
    assert order == [1, 2, 3]
    assert sorted(e for e in events if e.startswith("test")) == ["test 1", "test 2",
                                                                 "test 3"]
    assert events.index("build 2") < events.index("test 1")


@pytest.mark.parametrize("guests", [1, 2, 3])
def test_never_more_guests_than_slots(guests):
    lock, now, peak = threading.Lock(), [0], [0]
    gate = threading.Semaphore(0)

    def test(j, built):
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        gate.acquire(timeout=0.2)        # hold the slot a little: let others pile up
        with lock:
            now[0] -= 1

    scheduler.run(range(8), lambda j: j, test, guests)
    assert peak[0] == guests


def test_a_job_that_did_not_build_is_not_tested():
    tested = []
    scheduler.run(range(5), lambda j: None if j % 2 else j, lambda j, b: tested.append(j), 2)
    assert sorted(tested) == [0, 2, 4]


def test_interrupt_during_a_build_stops_guests_and_reraises():
    stopped = threading.Event()
    guest_running = threading.Event()

    def build(j):
        if j == 1:
            assert guest_running.wait(10)
            raise KeyboardInterrupt
        return j

    def test(j, built):
        guest_running.set()
        # a guest runs until it is stopped (what vm.stop_all does to QEMU)
        assert stopped.wait(10), "on_interrupt was not called while the guest ran"

    with pytest.raises(KeyboardInterrupt):
        scheduler.run([0, 1, 2], build, test, 1, on_interrupt=stopped.set)
    assert stopped.is_set()


def test_a_failing_test_ends_the_run_with_its_exception():
    called = []

    def test(j, built):
        if j == 0:
            raise RuntimeError("bug in the guest side")

    with pytest.raises(RuntimeError, match="bug in the guest side"):
        scheduler.run(range(3), lambda j: j, test, 1, on_interrupt=lambda: called.append(1))
    assert called == [1]
