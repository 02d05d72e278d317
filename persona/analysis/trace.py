"""Per-token projections of a conversation onto persona vectors (``persona monitor``).

The whole chat is rendered with the model's chat template and run once, teacher-forced; at each
probe's layer every token's residual state (unsteered: nothing is added) is projected onto the
unit vector, ``h . v / |v|`` (docs/monitoring.md). Each token belongs to the message whose
rendering added it; tokens of the message's own text are ``content``, the template's role
markers are ``template``. Per-turn means are over content tokens.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from persona.errors import PersonaError
from persona.model.engine import Engine, Request, Sampling
from persona.model.loading import LoadedModel
from persona.model.residual_hooks import StopForward, final_norm, residual_hooks

ROLES = ("system", "user", "assistant")
MAX_FILE_BYTES = 16 << 20


@dataclass(frozen=True)
class Conversation:
    """A chat to trace and the user messages to send when generating (``script``)."""

    messages: tuple[Mapping[str, str], ...]
    script: tuple[str, ...] = ()


@dataclass(frozen=True)
class Probe:
    """A persona vector row to project on: its name, layer and raw vector ``[d]``."""

    name: str
    layer: int
    vector: torch.Tensor


@dataclass
class Trace:
    """Per-token rows and the per-turn means of a traced conversation."""

    tokens: list[dict[str, Any]]
    turns: list[dict[str, Any]]
    probes: list[str]
    truncated: int = 0  # tokens dropped from the start (--truncate)


def _bad(where: str, what: str) -> PersonaError:
    return PersonaError(f"{where}: {what}")


def parse_conversation(obj: Any, where: str) -> Conversation:
    """Validate ``{"messages": [{"role", "content"}, ...], "script": [...]?}``."""
    if not isinstance(obj, Mapping) or "messages" not in obj:
        raise _bad(where, 'expected a JSON object with a "messages" list')
    messages = obj["messages"]
    if not isinstance(messages, list):
        raise _bad(where, '"messages" must be a list of {"role", "content"} objects')
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or not isinstance(m.get("content"), str):
            raise _bad(where, f'message {i} must be an object with a "role" and a text "content"')
        if m.get("role") not in ROLES:
            raise _bad(
                where, f"message {i} has unknown role {m.get('role')!r} (use {', '.join(ROLES)})"
            )
        out.append({"role": str(m["role"]), "content": m["content"]})
    if not any(m["role"] != "system" for m in out):
        raise _bad(where, "the conversation has no turns (no user or assistant message)")
    script = obj.get("script", [])
    if not isinstance(script, list) or not all(isinstance(s, str) and s.strip() for s in script):
        raise _bad(where, '"script" must be a list of non-empty user messages')
    return Conversation(tuple(out), tuple(script))


def read_conversation(path: str | Path, line: int | None = None) -> Conversation:
    """One conversation from a ``.json`` or ``.jsonl`` file (``line``: which, 1-based)."""
    p = Path(path)
    if p.stat().st_size > MAX_FILE_BYTES:
        raise PersonaError(f"{p}: larger than {MAX_FILE_BYTES >> 20} MiB; trace one chat at a time")
    text = p.read_text(encoding="utf-8")
    lines = [(i + 1, s) for i, s in enumerate(text.splitlines()) if s.strip()]
    if not lines:
        raise PersonaError(f'{p}: the file is empty (expected a {{"messages": [...]}} line)')
    if p.suffix == ".json":
        lines = [(1, text)]
    if line is None and len(lines) > 1:
        raise PersonaError(f"{p}: holds {len(lines)} conversations; pick one with --line N")
    chosen = [x for x in lines if line is None or x[0] == line]
    if not chosen:
        raise PersonaError(f"{p}: no conversation on line {line}")
    number, raw = chosen[0]
    try:
        obj = json.loads(raw)
    except ValueError as e:
        raise PersonaError(f"{p}:{number}: not valid JSON ({e.msg})") from None
    return parse_conversation(obj, f"{p}:{number}")


def check_replied(conv: Conversation, generate: int) -> None:
    """A final user turn needs a reply: in the file, or generated with ``--generate``."""
    if conv.messages[-1]["role"] == "user" and generate < 1:
        raise PersonaError(
            "the conversation ends with a user turn that has no reply: add the assistant's reply "
            "or pass --generate 1 to generate it"
        )
    need = generate - (1 if conv.messages[-1]["role"] == "user" else 0)
    if need > len(conv.script):
        raise PersonaError(
            f"--generate {generate} needs {need} more user message(s) in the conversation's "
            f'"script" list, which has {len(conv.script)}'
        )


def render(lm: LoadedModel, messages: Sequence[Mapping[str, str]]) -> str:
    """The chat as the model's template writes it, without a generation prompt."""
    tok = lm.tokenizer
    msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
    if not getattr(tok, "chat_template", None):
        return "".join(f"{m['role']}: {m['content']}\n" for m in msgs)
    try:
        return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=False)
    except Exception as e:  # e.g. a template that refuses a system role
        raise PersonaError(f"the model's chat template cannot render this chat: {e}") from None


def context_size(lm: LoadedModel) -> int | None:
    """Most positions the model takes (None when the config does not say)."""
    n = getattr(lm.model.config, "max_position_embeddings", None)
    return int(n) if isinstance(n, int) and n > 0 else None


def continue_chat(
    lm: LoadedModel,
    conv: Conversation,
    n: int,
    *,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    truncate: bool = False,
) -> list[dict[str, Any]]:
    """The conversation plus ``n`` generated assistant turns (the script gives the user turns
    in between); generated messages carry ``"generated": True``."""
    check_replied(conv, n)
    msgs: list[dict[str, Any]] = [dict(m) for m in conv.messages]
    script = list(conv.script)
    engine = Engine(lm, max_batch=1)
    ctx = context_size(lm)
    for i in range(n):
        if msgs[-1]["role"] != "user":
            msgs.append({"role": "user", "content": script.pop(0)})
        prompt = [{"role": m["role"], "content": m["content"]} for m in msgs]
        while ctx and len(engine.render(prompt)) + max_new_tokens > ctx:
            first = 1 if prompt[0]["role"] == "system" else 0
            if not truncate or len(prompt) - first <= 1:
                raise PersonaError(
                    f"the conversation is too long to continue within the model's context of {ctx} "
                    "tokens" + ("" if truncate else ": pass --truncate to drop the earliest turns")
                )
            del prompt[first]
        sampling = Sampling(max_new_tokens=max_new_tokens, temperature=temperature)
        (result,) = engine.generate([Request(prompt, seed=seed + i)], sampling)
        msgs.append({"role": "assistant", "content": result.text.strip(), "generated": True})
    return msgs


def _spans(lm: LoadedModel, messages: Sequence[Mapping[str, str]]) -> tuple[str, list[tuple]]:
    """The full text and, per message, (start, end, content start, content end) characters."""
    full = render(lm, messages)
    spans, prev = [], 0
    for k in range(len(messages)):
        text = full if k == len(messages) - 1 else render(lm, messages[: k + 1])
        if not full.startswith(text):
            raise PersonaError(
                "the model's chat template renders a conversation differently from its turns; "
                "per-turn traces need a template that writes turns one after another"
            )
        content = messages[k]["content"]
        at = text.find(content, prev) if content else -1
        c_start, c_end = (at, at + len(content)) if at >= 0 else (len(text), len(text))
        spans.append((prev, len(text), c_start, c_end))
        prev = len(text)
    return full, spans


@torch.inference_mode()
def trace(
    lm: LoadedModel,
    messages: Sequence[Mapping[str, Any]],
    probes: Sequence[Probe],
    *,
    truncate: bool = False,
) -> Trace:
    """Project every token of the chat onto each probe at its layer (one forward pass)."""
    if not probes:
        raise PersonaError("nothing to trace: name at least one trait")
    full, spans = _spans(lm, messages)
    enc = lm.tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    ctx = context_size(lm)
    cut = 0
    if ctx and len(ids) > ctx:
        if not truncate:
            raise PersonaError(
                f"the conversation is {len(ids)} tokens, longer than the model's context of {ctx}: "
                f"pass --truncate to drop the earliest {len(ids) - ctx} tokens"
            )
        cut = len(ids) - ctx
        ids, offsets = ids[cut:], offsets[cut:]
    layers = sorted({p.layer for p in probes})
    hidden: dict[int, torch.Tensor] = {}
    norm = final_norm(lm.model)

    def keep(layer: int, h: torch.Tensor) -> None:
        hidden[layer] = (norm(h) if layer == lm.num_layers and norm is not None else h)[0].float()
        if len(hidden) == len(layers):
            raise StopForward

    device = lm.device
    with lm.weights.lock, residual_hooks(lm.model, layers, keep):
        try:
            lm.model(input_ids=torch.tensor([ids], device=device), use_cache=False)
        except StopForward:
            pass
    values = {}
    for p in probes:
        unit = p.vector.to(device, torch.float32)
        values[p.name] = (hidden[p.layer] @ (unit / unit.norm())).cpu().tolist()
    rows = []
    for i, (start, _end) in enumerate(offsets):
        k = next((j for j, s in enumerate(spans) if s[0] <= start < s[1]), len(spans) - 1)
        m = messages[k]
        row = {
            "position": i + cut,
            "turn": k,
            "role": m["role"],
            "generated": bool(m.get("generated", False)),
            "part": "content" if spans[k][2] <= start < spans[k][3] else "template",
            "token": lm.tokenizer.decode([ids[i]]),
        }
        row.update({f"proj_{p.name}": values[p.name][i] for p in probes})
        rows.append(row)
    names = [p.name for p in probes]
    return Trace(rows, per_turn(rows, messages, names), names, cut)


def per_turn(
    rows: Sequence[Mapping[str, Any]], messages: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> list[dict[str, Any]]:
    """Mean projection over each turn's content tokens (NaN when all were truncated away)."""
    out = []
    for k, m in enumerate(messages):
        mine = [r for r in rows if r["turn"] == k and r["part"] == "content"]
        rec: dict[str, Any] = {
            "turn": k,
            "role": m["role"],
            "generated": bool(m.get("generated", False)),
            "tokens": len(mine),
        }
        for name in names:
            vals = [r[f"proj_{name}"] for r in mine]
            rec[f"mean_{name}"] = sum(vals) / len(vals) if vals else math.nan
        out.append(rec)
    return out


def plot(tr: Trace, title: str, layers: Mapping[str, int]) -> Figure:
    """The per-token trace of every probe along the conversation, turn boundaries marked and
    each turn's mean drawn over its tokens."""
    fig = Figure(figsize=(11.0, 3.2 * len(tr.probes)), layout="constrained")
    axes = fig.subplots(len(tr.probes), 1, squeeze=False)[:, 0]
    pos = [r["position"] for r in tr.tokens]
    colors = {"system": "tab:gray", "user": "tab:blue", "assistant": "tab:red"}
    for ax, name in zip(axes, tr.probes, strict=True):
        ax.plot(pos, [r[f"proj_{name}"] for r in tr.tokens], lw=0.7, color="black", alpha=0.6)
        for t in tr.turns:
            mine = [r["position"] for r in tr.tokens if r["turn"] == t["turn"]]
            if not mine:
                continue
            ax.axvline(mine[0], color="tab:gray", ls=":", lw=0.8)
            ax.axvspan(mine[0], mine[-1] + 1, color=colors[t["role"]], alpha=0.07)
            label = f"{t['turn']}:{t['role'][0]}" + ("*" if t["generated"] else "")
            ax.hlines(t[f"mean_{name}"], mine[0], mine[-1] + 1, color=colors[t["role"]], lw=2)
            ax.annotate(
                label, (mine[0], 1.0), xycoords=("data", "axes fraction"), fontsize=7, va="top"
            )
        ax.set_title(
            f"{name} (layer {layers.get(name)}): per token; bars = turn means over content "
            "tokens (blue user, red assistant, * generated); y-range of content tokens",
            fontsize=9,
        )
        content = [r[f"proj_{name}"] for r in tr.tokens if r["part"] == "content"]
        if content:  # template tokens (the first one above all) can be far out of range
            lo, hi = min(content), max(content)
            pad = 0.1 * (hi - lo or 1.0)
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("token position in the conversation (tokens)")
        ax.set_ylabel("projection on unit vector (residual-stream units)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig
