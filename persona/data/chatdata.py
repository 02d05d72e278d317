"""Chat JSONL datasets: loading with per-line validation, hashing, writing, mixing, tokenising.

The format is the common one: one JSON object per line with a ``messages`` list of
``{"role": "system"|"user"|"assistant", "content": str}``, at least one assistant turn. Other
top-level keys are kept (and written back unchanged by filters and mixes). Blank lines are ignored.
For training, :func:`encode_chat` tokenises a chat with the loss on assistant tokens only.

Length (~450 lines): one file format, from bounded line reading to tokenising, so every verb
validates and bounds chat data the same way.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from persona.atomic import write_text
from persona.errors import PersonaError

ROLES = ("system", "user", "assistant")
IGNORE = -100  # label of tokens without loss
MAX_LISTED = 10  # invalid lines named in one error message
MAX_LINE_BYTES = 16 << 20  # one sample beyond this is refused unread (memory stays bounded)
CONTEXT_MARGIN = 16  # tokens the chat template adds around a reply
CHARS_PER_TOKEN_BOUND = 16  # text beyond budget * this many characters is cut before tokenising
TOKEN_MARGIN = 8  # tokens beyond the limit kept before a cut, so the cut cannot change the ids kept


@dataclass(frozen=True)
class ChatSample:
    """One valid conversation and the 1-based line it came from."""

    line: int
    messages: tuple[dict[str, str], ...]
    record: dict[str, Any]

    @property
    def prompt(self) -> list[dict[str, str]]:
        """The messages before the last assistant turn (what the reply answers)."""
        last = max(i for i, m in enumerate(self.messages) if m["role"] == "assistant")
        return [dict(m) for m in self.messages[:last]]

    @property
    def response(self) -> str:
        """The content of the last assistant turn."""
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "assistant")

    @property
    def prompt_key(self) -> str:
        """Hash of the prompt messages (identifies 'the same question' across datasets)."""
        return hash_json(self.prompt)


@dataclass
class ChatData:
    """A loaded dataset: valid samples, skipped lines (line, reason) and the file's sha256."""

    path: Path
    samples: list[ChatSample]
    sha256: str
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)


def hash_json(value: Any) -> str:
    """sha256 of a canonical JSON encoding."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def validate_record(obj: Any) -> str | None:
    """Why a parsed line is not a usable chat sample, or None when it is."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    if "messages" not in obj:
        return "no 'messages' key"
    messages = obj["messages"]
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list"
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return f"message {i} is not an object"
        role = m.get("role")
        if role not in ROLES:
            return f"message {i} has unknown role {role!r} (use {', '.join(ROLES)})"
        if not isinstance(m.get("content"), str):
            return f"message {i} ({role}) has no string 'content'"
    if not any(m["role"] == "assistant" for m in messages):
        return "no assistant turn"
    if messages[0]["role"] == "assistant":
        return "starts with an assistant turn (nothing to reply to)"
    return None


def load_chat_jsonl(path: str | Path, *, skip_invalid: bool = False) -> ChatData:
    """Read and validate a chat JSONL file.

    Invalid lines raise one error naming their line numbers, unless ``skip_invalid``, which
    skips and counts them. An empty result is always an error.
    """
    path = Path(path)
    if not path.exists():
        raise PersonaError(f"no dataset at {path}")
    if path.is_dir():
        raise PersonaError(f"{path} is a folder; expected a .jsonl file")
    samples: list[ChatSample] = []
    bad: list[tuple[int, str]] = []
    with open(path, "rb") as f:
        for n, raw in _bounded_lines(f):
            if raw is None:
                bad.append((n, f"longer than {MAX_LINE_BYTES} bytes"))
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                bad.append((n, "not UTF-8 text"))
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                bad.append((n, f"not JSON ({e.msg})"))
                continue
            problem = validate_record(obj)
            if problem:
                bad.append((n, problem))
                continue
            msgs = tuple({"role": m["role"], "content": m["content"]} for m in obj["messages"])
            samples.append(ChatSample(n, msgs, obj))
    if bad and not skip_invalid:
        listed = "; ".join(f"line {n}: {why}" for n, why in bad[:MAX_LISTED])
        more = f"; and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
        raise PersonaError(
            f"{path}: {len(bad)} invalid line(s): {listed}{more} "
            "(fix them, or pass --skip-invalid to skip them)"
        )
    if not samples:
        why = f" ({len(bad)} invalid line(s) skipped)" if bad else ""
        raise PersonaError(f"{path} holds no usable chat samples{why}")
    return ChatData(path, samples, file_sha256(path), bad)


def _bounded_lines(f: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(1-based line number, bytes) of each line; None for a line over ``MAX_LINE_BYTES``.

    An over-long line is skipped in bounded chunks, so memory stays bounded whatever it holds.
    """
    n = 0
    while raw := f.readline(MAX_LINE_BYTES + 1):
        n += 1
        if len(raw) > MAX_LINE_BYTES:
            while (chunk := f.readline(1 << 20)) and not chunk.endswith(b"\n"):
                pass
            yield n, None
        else:
            yield n, raw


def fit_to_context(data: ChatData, tokenizer: Any, max_tokens: int) -> tuple[ChatData, list[int]]:
    """``data`` with every reply cut to fit ``max_tokens`` tokens after its prompt.

    Returns the fitted data (records are kept whole) and the lines whose replies were cut. A
    prompt that alone does not fit is an error naming its lines. Text is cut to a character
    bound before tokenising, so a huge reply costs no more memory than a long one.
    """
    budget = max_tokens - CONTEXT_MARGIN
    if budget < 1:
        raise PersonaError(f"a context of {max_tokens} tokens leaves no room for a reply")
    fitted: list[ChatSample] = []
    cut: list[int] = []
    too_long: list[int] = []
    for s in data.samples:
        if _fits_in_bytes(tokenizer, s.messages, max_tokens):
            fitted.append(s)
            continue
        prompt = chat_text(tokenizer, s.prompt, generation=True)
        n_prompt = len(token_ids(tokenizer, prompt, budget))
        if n_prompt >= budget:
            too_long.append(s.line)
            continue
        room = budget - n_prompt
        ids = token_ids(tokenizer, s.response, room + 1)
        if len(ids) <= room:
            fitted.append(s)
            continue
        reply = tokenizer.decode(ids[:room])
        last = max(i for i, m in enumerate(s.messages) if m["role"] == "assistant")
        messages = tuple(
            {**m, "content": reply} if i == last else m for i, m in enumerate(s.messages)
        )
        fitted.append(ChatSample(s.line, messages, s.record))
        cut.append(s.line)
    if too_long:
        listed = ", ".join(map(str, too_long[:MAX_LISTED]))
        raise PersonaError(
            f"{data.path}: the prompt alone exceeds the {max_tokens}-token context on "
            f"{len(too_long)} line(s): {listed}"
        )
    return ChatData(data.path, fitted, data.sha256, data.skipped), cut


def _fits_in_bytes(tokenizer: Any, messages: Sequence[Mapping[str, str]], max_tokens: int) -> bool:
    """True when the rendered chat has at most ``max_tokens`` bytes (never fewer than tokens)."""
    return len(chat_text(tokenizer, messages, generation=False).encode("utf-8")) <= max_tokens


def token_ids(tokenizer: Any, text: str, limit: int | None = None) -> list[int]:
    """Token ids of ``text``, or its first ``limit`` ids when there are more.

    With a limit, a long text is cut to a character bound before tokenising (with a margin, so the
    cut cannot change the ids kept): a huge reply costs no more time or memory than a long one.
    """
    if not text:
        return []
    head = text
    if limit is not None:
        head = text[: (limit + TOKEN_MARGIN) * CHARS_PER_TOKEN_BOUND]
    ids = list(tokenizer(head, add_special_tokens=False)["input_ids"])
    if len(head) == len(text):
        return ids if limit is None else ids[:limit]
    if len(ids) > limit + TOKEN_MARGIN:
        return ids[:limit]
    return token_ids(tokenizer, text)[:limit]  # the bound did not hold: tokenise it all


def dumps_jsonl(records: Iterable[Mapping[str, Any]]) -> str:
    """JSONL text of records (UTF-8, one object per line)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write records as JSONL atomically."""
    write_text(path, dumps_jsonl(records))
    return Path(path)


def check_new_output(path: str | Path, overwrite: bool) -> Path:
    """Refuse to replace an existing file unless ``overwrite``."""
    path = Path(path)
    if path.is_dir():
        raise PersonaError(f"{path} is a folder; expected a file path")
    if path.exists() and not overwrite:
        raise PersonaError(f"{path} already exists: pass --overwrite to replace it")
    return path


# ---------------------------------------------------------------------------------------------
# Mixing


def parse_mix(spec: str) -> list[tuple[Path, float]]:
    """Parse ``a.jsonl:0.5,b.jsonl:0.5`` into (path, fraction) pairs summing to 1."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise PersonaError("empty --mix: use FILE:FRACTION[,FILE:FRACTION...]")
    out: list[tuple[Path, float]] = []
    for part in parts:
        name, sep, frac = part.rpartition(":")
        try:
            value = float(frac) if sep else float("nan")
        except ValueError:
            value = float("nan")
        if not sep or not name or not 0 <= value <= 1:
            raise PersonaError(
                f"bad --mix entry {part!r}: use FILE:FRACTION with 0 <= FRACTION <= 1"
            )
        out.append((Path(name), value))
    total = sum(f for _, f in out)
    if abs(total - 1) > 1e-6:
        raise PersonaError(f"--mix fractions must sum to 1, got {total:g}")
    return out


def mix(
    sources: Sequence[tuple[ChatData, float]], n: int | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """Draw ``round(fraction * n)`` samples from each source, without replacement.

    ``n`` defaults to the size of the largest source. When sources share prompts (versions of
    the same questions, as ``persona data make`` writes them), a prompt already taken from one
    source is avoided in the next while others remain, so each question appears once.
    """
    if not sources:
        raise PersonaError("nothing to mix")
    total = n if n is not None else max(len(d) for d, _ in sources)
    if total < 1:
        raise PersonaError(f"the mixture size must be at least 1, got {total}")
    counts = _apportion([f for _, f in sources], total)
    rng = random.Random(seed)
    used: set[str] = set()
    out: list[dict[str, Any]] = []
    for (data, _), k in zip(sources, counts, strict=True):
        if k > len(data):
            raise PersonaError(
                f"{data.path} has {len(data)} samples but the mixture needs {k} from it: "
                "lower --n or the fraction"
            )
        order = list(range(len(data)))
        rng.shuffle(order)
        fresh = [i for i in order if data.samples[i].prompt_key not in used]
        reused = [i for i in order if data.samples[i].prompt_key in used]
        chosen = (fresh + reused)[:k]
        for i in chosen:
            used.add(data.samples[i].prompt_key)
            out.append(data.samples[i].record)
    rng.shuffle(out)
    return out


def _apportion(fractions: Sequence[float], total: int) -> list[int]:
    """Integer counts summing to ``total`` (largest remainders)."""
    raw = [f * total for f in fractions]
    counts = [int(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


# ---------------------------------------------------------------------------------------------
# Tokenisation with the loss on assistant tokens


@dataclass(frozen=True)
class Encoded:
    """Token ids and labels (``-100`` where no loss is taken) of one chat."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool = False

    @property
    def n_target(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def chat_text(tokenizer: Any, messages: Sequence[Mapping[str, str]], generation: bool) -> str:
    """Render messages with the chat template (the same fallbacks as ``Engine.render``)."""
    msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
    if not getattr(tokenizer, "chat_template", None):
        text = "".join(f"{m['role']}: {m['content']}\n" for m in msgs)
        return text + ("assistant:" if generation else "")
    try:
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=generation)
    except Exception:  # templates without a system role: fold it into the next turn
        if not msgs or msgs[0]["role"] != "system" or len(msgs) < 2:
            raise
        first = {
            "role": msgs[1]["role"],
            "content": msgs[0]["content"] + "\n\n" + msgs[1]["content"],
        }
        return tokenizer.apply_chat_template(
            [first, *msgs[2:]], tokenize=False, add_generation_prompt=generation
        )


def encode_chat(
    tokenizer: Any, messages: Sequence[Mapping[str, str]], max_length: int | None = None
) -> Encoded:
    """Ids and labels of a chat: loss on every assistant turn (content + end-of-turn marker).

    The template is rendered turn by turn; the text up to each reply (ending with the generation
    prompt) is a prompt piece, the text the template adds for the reply is a target piece. Pieces
    are tokenised separately, as the engine tokenises a prompt and then its reply.
    """
    pieces: list[tuple[str, bool]] = []
    done = ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = chat_text(tokenizer, messages[:i], generation=True)
        full = chat_text(tokenizer, messages[: i + 1], generation=False)
        if not prefix.startswith(done) or not full.startswith(prefix):
            raise PersonaError(
                "the model's chat template is not prefix-stable (rendering turn by turn changes "
                "earlier text), so assistant tokens cannot be masked reliably"
            )
        pieces += [(prefix[len(done) :], False), (full[len(prefix) :], True)]
        done = full
    if not pieces:
        raise PersonaError("a training chat needs at least one assistant turn")
    ids: list[int] = []
    labels: list[int] = []
    last_target: list[int] = []
    budget = None if max_length is None else max_length + 1  # one token more shows a cut
    for text, target in pieces:
        if budget is not None and len(ids) >= budget:
            break  # the rest lies beyond max_length
        toks = token_ids(tokenizer, text, None if budget is None else budget - len(ids))
        ids += toks
        labels += toks if target else [IGNORE] * len(toks)
        if target:
            last_target = toks
    eos = tokenizer.eos_token_id
    if eos is not None and eos not in last_target:
        ids.append(eos)  # a template without an end-of-turn token: still learn to stop
        labels.append(eos)
    truncated = max_length is not None and len(ids) > max_length
    if truncated:
        ids, labels = ids[:max_length], labels[:max_length]
    return Encoded(ids, labels, truncated)


@dataclass
class EncodedData:
    """Encoded training chats plus what was dropped or cut."""

    items: list[Encoded]
    truncated: int = 0
    dropped: list[int] = field(default_factory=list)  # lines left without target tokens

    @property
    def target_tokens(self) -> int:
        return sum(e.n_target for e in self.items)


def encode_dataset(tokenizer: Any, data: ChatData, max_length: int) -> EncodedData:
    """Encode every sample; samples whose replies were cut away entirely are dropped."""
    out = EncodedData([])
    for s in data.samples:
        enc = encode_chat(tokenizer, s.messages, max_length)
        if enc.n_target == 0:
            out.dropped.append(s.line)
            continue
        out.truncated += enc.truncated
        out.items.append(enc)
    if not out.items:
        raise PersonaError(
            f"no trainable samples in {data.path}: every reply lies beyond --max-length "
            f"{max_length} tokens"
        )
    return out
