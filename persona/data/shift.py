"""Fine-tuning shift: how far checkpoints moved along the base model's persona vector.

Shift of a checkpoint (DESIGN section 2) = mean over the trait's eval prompts of the last-prompt-
token projection under the checkpoint minus the same under the base, using the base model's
vector at the trait's layer. The response variant uses each model's own greedy replies to the
eval prompts: mean response projection under the checkpoint minus that under the base.
Eval prompts are the bare questions (no system prompt), as in the paper's evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from persona.errors import PersonaError
from persona.model.engine import Capture, Engine, Request, Sampling
from persona.model.loading import LoadedModel, load_model
from persona.model.vectors import PersonaVector, check_compatible

PROBE = "trait"


class TraitLike(Protocol):
    name: str
    eval_questions: Sequence[str]


def eval_prompts(trait: TraitLike) -> list[list[dict[str, str]]]:
    """The trait's eval questions as single-turn chats."""
    if not trait.eval_questions:
        raise PersonaError(f"trait {trait.name} has no eval questions")
    return [[{"role": "user", "content": q}] for q in trait.eval_questions]


def measure(
    lm: LoadedModel,
    prompts: Sequence[Sequence[dict[str, str]]],
    vector: PersonaVector,
    layer: int,
    *,
    response: bool = True,
    max_new_tokens: int = 64,
    max_batch: int = 8,
) -> dict[str, float]:
    """Mean last-prompt-token projection (and mean own-reply projection) over ``prompts``."""
    capture = Capture(probes={PROBE: vector.response_avg}, probe_layers={PROBE: (layer,)})
    engine = Engine(lm, max_batch=max_batch)
    scored = engine.score([Request(list(p), response="") for p in prompts], capture)
    last = [r.projections[PROBE][layer].prompt_last for r in scored]
    out = {"prompt_last": sum(last) / len(last), "n_prompts": float(len(last))}
    if response:
        sampling = Sampling(max_new_tokens=max_new_tokens, temperature=0.0)
        gen = engine.generate([Request(list(p)) for p in prompts], sampling, capture)
        resp = [r.projections[PROBE][layer].response_mean for r in gen]
        vals = [v for v in resp if v is not None]
        out["response"] = sum(vals) / len(vals) if vals else math.nan
    return out


def _load_checkpoint(
    base_spec: str, checkpoint: str | Path, base: LoadedModel, device: str | None
) -> LoadedModel:
    path = Path(checkpoint)
    if (path / "adapter_config.json").exists():
        from persona.data.finetune import read_run

        run = read_run(path) or {}
        fp = run.get("base_fingerprint")
        if fp and fp != base.base_fingerprint:
            raise PersonaError(
                f"{path} was trained on another base (fingerprint {fp}, this base "
                f"{base.base_fingerprint}): pass the base model it was trained on"
            )
        return load_model(base_spec, adapter=str(path), device=device)  # shares base weights
    lm = load_model(str(checkpoint), device=device)
    if lm.num_layers != base.num_layers or lm.hidden_size != base.hidden_size:
        raise PersonaError(f"{checkpoint} has a different shape than the base {base.model_id}")
    return lm


def finetuning_shift(
    base_spec: str,
    checkpoints: Sequence[str | Path],
    trait: TraitLike,
    vector: PersonaVector,
    layer: int,
    *,
    response: bool = True,
    max_new_tokens: int = 64,
    max_batch: int = 8,
    device: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Per checkpoint: ``prompt_last`` and ``response`` shifts plus the raw means behind them.

    ``checkpoints`` are LoRA adapter directories over ``base_spec`` (or full model folders of
    the same shape). The result also has a ``"base"`` entry with the base model's means.
    """
    base = load_model(base_spec, device=device)
    check_compatible(
        vector,
        num_layers=base.num_layers,
        hidden_size=base.hidden_size,
        fingerprint=base.base_fingerprint,
        source=f"the {trait.name} vector",
    )
    prompts = eval_prompts(trait)
    kwargs = {"response": response, "max_new_tokens": max_new_tokens, "max_batch": max_batch}
    ref = measure(base, prompts, vector, layer, **kwargs)
    out = {"base": _entry(trait.name, layer, ref, ref)}
    for ckpt in checkpoints:
        lm = _load_checkpoint(base_spec, ckpt, base, device)
        out[str(ckpt)] = _entry(
            trait.name, layer, measure(lm, prompts, vector, layer, **kwargs), ref
        )
    return out


def _entry(trait: str, layer: int, got: dict[str, float], ref: dict[str, float]) -> dict[str, Any]:
    nan = math.nan
    return {
        "trait": trait,
        "layer": layer,
        "n_prompts": int(got["n_prompts"]),
        "prompt_last": got["prompt_last"] - ref["prompt_last"],
        "response": got.get("response", nan) - ref.get("response", nan),
        "prompt_last_mean": got["prompt_last"],
        "response_mean": got.get("response", nan),
    }
