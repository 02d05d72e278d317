"""The provider's async micro-batcher: grouping, limits, error isolation, cancellation."""

from __future__ import annotations

import threading

import anyio
import pytest

from persona.provider.batcher import Batcher


class Recorder:
    def __init__(self, fail_on: object = None) -> None:
        self.calls: list[tuple[object, list[int]]] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def __call__(self, key, items):
        with self.lock:
            self.calls.append((key, list(items)))
        if self.fail_on in items:
            raise ValueError(f"bad item {self.fail_on}")
        return [(key, i * 10) for i in items]


def gather(batcher: Batcher, jobs: list[tuple[object, int]]) -> list[object]:
    results: list[object] = [None] * len(jobs)

    async def one(i: int, key: object, item: int) -> None:
        try:
            results[i] = await batcher.submit(key, item)
        except Exception as e:  # noqa: BLE001
            results[i] = e

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for i, (key, item) in enumerate(jobs):
                tg.start_soon(one, i, key, item)

    anyio.run(main)
    return results


def test_groups_by_key_and_respects_max_batch():
    rec = Recorder()
    b = Batcher(rec, max_batch=3, window=0.2)
    jobs = [("a", i) for i in range(5)] + [("b", i) for i in range(2)]
    results = gather(b, jobs)
    assert results == [(k, i * 10) for k, i in jobs]
    assert all(len(items) <= 3 for _, items in rec.calls)
    assert all(len({k}) == 1 for k, _ in rec.calls)
    assert sorted(len(items) for _, items in rec.calls) == [2, 2, 3]
    assert b.stats.runs == 3 and b.stats.items == 7


def test_an_error_fails_only_its_item():
    rec = Recorder(fail_on=2)
    b = Batcher(rec, max_batch=4, window=0.2)
    results = gather(b, [("a", i) for i in range(4)])
    assert isinstance(results[2], ValueError) and "bad item 2" in str(results[2])
    assert [r for i, r in enumerate(results) if i != 2] == [("a", 0), ("a", 10), ("a", 30)]


def test_cancelled_caller_does_not_block_others():
    rec = Recorder()
    b = Batcher(rec, max_batch=8, window=0.3)
    out: dict[str, object] = {}

    async def main() -> None:
        async with anyio.create_task_group() as tg:

            async def leader() -> None:
                with anyio.move_on_after(0.05):  # cancelled while waiting for the window
                    out["leader"] = await b.submit("k", 1)

            async def follower() -> None:
                out["follower"] = await b.submit("k", 2)

            tg.start_soon(leader)
            await anyio.sleep(0.01)
            tg.start_soon(follower)

    anyio.run(main)
    assert "leader" not in out and out["follower"] == ("k", 20)
    assert [items for _, items in rec.calls] == [[2]]


def test_works_across_event_loops():
    b = Batcher(Recorder(), max_batch=2, window=0.0)
    assert gather(b, [("a", 1)]) == [("a", 10)]
    assert gather(b, [("a", 2), ("a", 3)]) == [("a", 20), ("a", 30)]


def test_rejects_bad_max_batch():
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(Recorder(), max_batch=0)
