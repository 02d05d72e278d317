"""An async micro-batcher: concurrent calls with the same key share one blocking run.

Callers ``await batcher.submit(key, item)``. The first caller becomes the *leader*: it collects
until no call has arrived for ``window`` seconds (at most ``10 * window`` in all) or ``max_batch``
items are pending, takes the oldest group (items with equal keys) and runs ``run(key, items)`` in
a worker thread, so the event loop stays free. Waiting for a quiet gap rather than a fixed window
keeps a wave of samples that re-enter over tens of milliseconds in one batch. When
the leader's own item is done it hands leadership to the oldest pending caller. One run is in
flight at a time per batcher. If a batched run raises, its items are retried one by one so an
error fails only the item that caused it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class _Entry(Generic[T]):
    key: Hashable
    item: T
    seq: int
    wake: anyio.Event = field(default_factory=anyio.Event)
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """Counters for tests and benchmarks."""

    runs: int = 0
    items: int = 0
    sizes: list[int] = field(default_factory=list)


class _LoopState:
    """Pending entries and the leader, valid for one event loop."""

    def __init__(self) -> None:
        self.pending: dict[Hashable, list[_Entry[Any]]] = {}
        self.leader: _Entry[Any] | None = None
        self.arrived = anyio.Event()
        self.last_arrival = 0.0

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.pending.values())


class Batcher(Generic[T, R]):
    """Group concurrent ``submit`` calls by key into runs of at most ``max_batch`` items."""

    def __init__(
        self,
        run: Callable[[Hashable, Sequence[T]], Sequence[R]],
        max_batch: int = 8,
        window: float = 0.05,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.run = run
        self.max_batch = max_batch
        self.window = max(0.0, float(window))
        self.stats = BatchStats()
        self._seq = itertools.count()
        self._state: _LoopState | None = None
        self._loop: object = None

    def _current(self) -> _LoopState:
        """State for the running event loop (an Inspect process may run several in turn)."""
        try:
            loop: object = asyncio.get_running_loop()
        except RuntimeError:  # trio
            import trio

            loop = trio.lowlevel.current_root_task()
        if self._state is None or self._loop is not loop:
            self._state, self._loop = _LoopState(), loop
        return self._state

    async def submit(self, key: Hashable, item: T) -> R:
        """Queue ``item`` under ``key`` and return its result (or raise its error)."""
        state = self._current()
        entry: _Entry[T] = _Entry(key, item, next(self._seq))
        state.pending.setdefault(key, []).append(entry)
        state.last_arrival = entry.queued_at
        state.arrived.set()
        try:
            if state.leader is None:
                state.leader = entry
            else:
                await entry.wake.wait()  # done, or promoted to leader
            while not entry.done:
                await self._lead(state)
        finally:
            self._discard(state, entry)
            if state.leader is entry:
                self._promote(state)
        if entry.error is not None:
            raise entry.error
        return entry.result

    async def _collect(self, state: _LoopState) -> None:
        """Wait until ``window`` passes without arrivals, the cap passes, or a batch is full."""
        start = time.perf_counter()
        cap = start + 10 * self.window
        while state.total < self.max_batch:
            now = time.perf_counter()
            until = min(max(state.last_arrival, start) + self.window, cap)
            if now >= until:
                return
            state.arrived = anyio.Event()
            with anyio.move_on_after(until - now):
                await state.arrived.wait()

    async def _lead(self, state: _LoopState) -> None:
        if self.window > 0:
            await self._collect(state)
        key, batch = self._take(state)
        if not batch:
            return
        items = [e.item for e in batch]
        results: list[Any] = [RuntimeError("the batch was interrupted")] * len(batch)
        try:
            results = await anyio.to_thread.run_sync(self._run_isolated, key, items)
        except Exception as err:  # thread machinery failed: fail the whole batch
            results = [err] * len(batch)
        finally:  # waiters are always woken, even when the leader is interrupted
            self.stats.runs += 1
            self.stats.items += len(batch)
            self.stats.sizes.append(len(batch))
            for e, res in zip(batch, results, strict=True):
                if isinstance(res, BaseException):
                    e.error = res
                else:
                    e.result = res
                e.done = True
                e.wake.set()

    def _run_isolated(self, key: Hashable, items: list[T]) -> list[Any]:
        try:
            results = list(self.run(key, items))
            if len(results) != len(items):
                raise RuntimeError(f"batch run returned {len(results)} results for {len(items)}")
            return results
        except Exception as err:
            if len(items) == 1:
                return [err]
        out: list[Any] = []
        for item in items:  # retry one by one so one bad item fails alone
            try:
                out.extend(self.run(key, [item]))
            except Exception as err:
                out.append(err)
        return out

    def _take(self, state: _LoopState) -> tuple[Hashable, list[_Entry[Any]]]:
        if not state.pending:
            return None, []
        key = min(state.pending, key=lambda k: state.pending[k][0].seq)
        group = state.pending[key]
        batch, rest = group[: self.max_batch], group[self.max_batch :]
        if rest:
            state.pending[key] = rest
        else:
            del state.pending[key]
        return key, batch

    @staticmethod
    def _discard(state: _LoopState, entry: _Entry[Any]) -> None:
        group = state.pending.get(entry.key)
        if group and entry in group:
            group.remove(entry)
            if not group:
                del state.pending[entry.key]

    @staticmethod
    def _promote(state: _LoopState) -> None:
        waiting = [e for group in state.pending.values() for e in group]
        nxt = min(waiting, key=lambda e: e.seq) if waiting else None
        state.leader = nxt
        if nxt is not None:
            nxt.wake.set()
