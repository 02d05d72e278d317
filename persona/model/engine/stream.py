"""Reply text as it grows: the part of a partial reply that no later token can change.

The engine decodes a row's tokens again after each new token; :class:`TextStream` hands out only
text that is final: never an incomplete multi-byte character (decoded as U+FFFD until its last
byte arrives) and never text that a stop sequence could still cut (the last ``len(stop) - 1``
characters are held back). So the pieces of a row always concatenate to a prefix of its final
text, which :func:`cut_at_stop` defines.
"""

from __future__ import annotations

from collections.abc import Sequence

REPLACEMENT = "\ufffd"


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the first stop sequence in it."""
    found = [text.find(s) for s in stop if s in text]
    return text[: min(found)] if found else text


class TextStream:
    """The final part of one row's reply, piece by piece."""

    def __init__(self, stop: Sequence[str]) -> None:
        self.stop = tuple(stop)
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.sent = ""

    def piece(self, text: str, finished: bool) -> str:
        """New final text, given the row's whole decoded text so far (``finished``: no more
        tokens will come, so nothing is held back but an incomplete character)."""
        text = cut_at_stop(text, self.stop)
        if not finished and self.hold:
            text = text[: max(0, len(text) - self.hold)]
        text = text.rstrip(REPLACEMENT)
        if len(text) <= len(self.sent) or not text.startswith(self.sent):
            return ""
        new = text[len(self.sent) :]
        self.sent = text
        return new
