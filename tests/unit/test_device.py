"""The shared/exclusive lock that keeps model exports from flipping torch's flags under a fit."""

from __future__ import annotations

import threading
import time

from models.device import SharedExclusiveLock


def test_shared_holders_overlap_and_an_exclusive_one_waits_for_them() -> None:
    lock = SharedExclusiveLock()
    events: list[str] = []
    both_shared = threading.Barrier(2, timeout=10)

    def shared(name: str) -> None:
        with lock.shared():
            events.append(f"{name} in")
            both_shared.wait()  # only passes if the two are inside at once
            time.sleep(0.2)
            events.append(f"{name} out")

    def exclusive() -> None:
        time.sleep(0.05)  # ask while both shared holders are inside
        with lock.exclusive():
            events.append("exclusive in")

    threads = [threading.Thread(target=shared, args=(n,)) for n in ("a", "b")]
    threads.append(threading.Thread(target=exclusive))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert events.index("exclusive in") > max(events.index("a out"), events.index("b out"))


def test_a_waiting_exclusive_holder_goes_before_new_shared_ones() -> None:
    lock = SharedExclusiveLock()
    order: list[str] = []
    first_in = threading.Event()

    def first_shared() -> None:
        with lock.shared():
            first_in.set()
            time.sleep(0.3)
        order.append("first shared out")

    def exclusive() -> None:
        first_in.wait(5)
        with lock.exclusive():
            order.append("exclusive")

    def late_shared() -> None:
        first_in.wait(5)
        time.sleep(0.1)  # the exclusive request is waiting by now
        with lock.shared():
            order.append("late shared")

    threads = [threading.Thread(target=f) for f in (first_shared, exclusive, late_shared)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert order.index("exclusive") < order.index("late shared")


def test_an_exclusive_holder_asking_again_queues_behind_waiting_shared_ones() -> None:
    """A loop of exclusive holders (a model export after each fit, say) must not shut out
    a shared request that arrived meanwhile."""
    lock = SharedExclusiveLock()
    stop = threading.Event()
    order: list[str] = []

    def exclusive_loop() -> None:
        while not stop.is_set():
            with lock.exclusive():
                order.append("exclusive")
                time.sleep(0.01)

    looper = threading.Thread(target=exclusive_loop)
    looper.start()
    time.sleep(0.05)
    entered = threading.Event()

    def shared() -> None:
        with lock.shared():
            entered.set()

    reader = threading.Thread(target=shared)
    reader.start()
    got_in = entered.wait(5)
    stop.set()
    looper.join(timeout=10)
    reader.join(timeout=10)
    assert got_in
