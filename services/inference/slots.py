"""Slot scheduling: at most N answers generate at once, a bounded FIFO queue waits for a slot, and a
full queue is refused at once (RESOURCE_EXHAUSTED) instead of piling up latency.

Lives on the event loop (call `release` there too).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

from jenkins_assistant.common.errors import Overloaded

Slot = TypeVar("Slot")


class SlotPool(Generic[Slot]):
    def __init__(self, slots: list[Slot], max_queue: int) -> None:
        self._free: deque[Slot] = deque(slots)
        self._size = len(slots)
        self._max_queue = max_queue
        self._waiters: deque[asyncio.Future] = deque()

    @property
    def queued(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())

    @property
    def active(self) -> int:
        return self._size - len(self._free)

    async def acquire(self) -> Slot:
        if self._free and not self.queued:
            return self._free.popleft()
        if self.queued >= self._max_queue:
            raise Overloaded(f"all {self._size} generation slots are busy and {self._max_queue} chats are queued; "
                             "retry later")
        waiter: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())  # a slot arrived just as the caller gave up: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self, slot: Slot) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return
        self._free.append(slot)

