"""Streamed tokens from the engine's worker thread to an asyncio event loop.

The batcher runs the engine in a worker thread; a :class:`TokenFeed` gives each streamed call a
sink that queues its tokens on the loop without blocking generation (``call_soon_threadsafe``),
tagged with the call's index. Closing the feed (a client hung up) makes every sink answer
False, so the engine stops those rows at their next token.
"""

from __future__ import annotations

import asyncio

from persona.provider.calls import TokenOut, TokenSink


class TokenFeed:
    """One queue of ``(tag, token)`` pairs for the calls of one streamed request."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple[int, TokenOut]] = asyncio.Queue()
        self.closed = False

    def sink(self, tag: int) -> TokenSink:
        """The sink of call ``tag``."""
        return _Sink(self, tag)

    def close(self) -> None:
        """Stop every call of this feed at its next token (queued ones never run)."""
        self.closed = True


class _Sink:
    """A :class:`TokenSink` that queues one call's tokens on its feed's loop."""

    def __init__(self, feed: TokenFeed, tag: int) -> None:
        self.feed = feed
        self.tag = tag

    @property
    def stopped(self) -> bool:
        return self.feed.closed

    def __call__(self, token: TokenOut) -> bool:
        if self.feed.closed:
            return False
        try:
            self.feed.loop.call_soon_threadsafe(self.feed.queue.put_nowait, (self.tag, token))
        except RuntimeError:  # the loop is gone: nobody reads this call any more
            self.feed.closed = True
            return False
        return True
