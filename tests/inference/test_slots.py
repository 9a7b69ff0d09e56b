"""Slot scheduling: bounded FIFO queue on the event loop, and the fair per-token gate between threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from jenkins_assistant.common.errors import Overloaded
from jenkins_assistant.inference.model import FairGate
from jenkins_assistant.inference.slots import SlotPool


def test_pool_serves_waiters_in_order_and_refuses_beyond_the_queue():
    async def scenario():
        pool = SlotPool(["a"], max_queue=2)
        held = await pool.acquire()
        first = asyncio.create_task(pool.acquire())
        second = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0)
        assert pool.queued == 2 and pool.active == 1
        with pytest.raises(Overloaded):
            await pool.acquire()
        pool.release(held)
        assert await first == "a" and not second.done()
        pool.release("a")
        assert await second == "a"
        pool.release("a")
        assert pool.active == 0 and pool.queued == 0

    asyncio.run(scenario())


def test_a_cancelled_waiter_leaves_the_queue_and_loses_no_slot():
    async def scenario():
        pool = SlotPool(["a"], max_queue=1)
        held = await pool.acquire()
        waiter = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert pool.queued == 0
        pool.release(held)
        assert await pool.acquire() == "a"

    asyncio.run(scenario())


def test_fair_gate_hands_permits_first_come_first_served():
    gate = FairGate(1)
    gate.acquire()
    order: list[int] = []
    arrived = []
    threads = []
    for number in range(4):
        ready = threading.Event()

        def worker(n=number, ready=ready):
            ready.set()
            gate.acquire()
            order.append(n)
            gate.release()

        thread = threading.Thread(target=worker)
        thread.start()
        ready.wait()
        # Wait until this worker is queued before starting the next, so arrival order is known.
        while len(gate._waiters) != number + 1:
            threading.Event().wait(0.001)
        arrived.append(number)
        threads.append(thread)
    gate.release()
    for thread in threads:
        thread.join(timeout=10)
    assert order == arrived == [0, 1, 2, 3]


def test_fair_gate_lets_a_whole_cpu_waiter_go_first_without_being_overtaken():
    gate = FairGate(2)
    gate.acquire(1)
    order: list[str] = []
    whole = threading.Thread(target=lambda: (gate.acquire(2), order.append("prompt"), gate.release(2)))
    whole.start()
    while len(gate._waiters) != 1:
        threading.Event().wait(0.001)
    # One permit is free, but the waiter at the head needs two: a newcomer wanting one must queue behind it.
    single = threading.Thread(target=lambda: (gate.acquire(1), order.append("decode"), gate.release(1)))
    single.start()
    while len(gate._waiters) != 2:
        threading.Event().wait(0.001)
    gate.release(1)
    whole.join(timeout=10)
    single.join(timeout=10)
    assert order == ["prompt", "decode"]
    with pytest.raises(ValueError):
        gate.acquire(3)
