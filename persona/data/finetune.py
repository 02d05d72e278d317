"""LoRA fine-tuning on chat JSONL with the loss on assistant tokens, plus training-time edits.

A plain PyTorch loop (AdamW over the LoRA parameters, linear warm-up and decay, gradient
accumulation, gradient clipping) on a model loaded fresh for training - never the shared inference
instance. Optional preventative steering / CAFT ablation hooks
(:mod:`persona.data.training_edits`) are
active during the training forward passes only. The result is a PEFT adapter directory, written
atomically, with ``persona_run.json`` recording the base model, data hash, options and edits.

Length (~440 lines): options, the training loop and the adapter record are kept together because
the record must describe exactly the loop that ran.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from persona.atomic import atomic_dir
from persona.data.chatdata import IGNORE, ChatData, Encoded, EncodedData, encode_dataset, hash_json
from persona.data.training_edits import (
    EditSpec,
    LayerHint,
    TrainingEdit,
    hook_count,
    resolve_edits,
    training_edits,
)
from persona.errors import PersonaError

RUN_FILE = "persona_run.json"
RUN_FORMAT = "persona-run/1"
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class FinetuneOptions:
    """LoRA and optimisation settings (defaults: the paper's LoRA shape, a CPU-friendly lr)."""

    rank: int = 32
    alpha: float = 64.0
    rslora: bool = True
    dropout: float = 0.0
    learning_rate: float = 1e-4
    epochs: int = 1
    batch_size: int = 2
    grad_accum: int = 8
    max_length: int = 1024
    warmup_steps: int | None = None  # None: 10% of the optimizer steps
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 0
    target_modules: tuple[str, ...] | None = None  # None: q/k/v/o/gate/up/down when present
    dtype: str | None = None

    def check(self) -> None:
        ints = {"rank": self.rank, "epochs": self.epochs, "batch size": self.batch_size}
        ints |= {"gradient accumulation": self.grad_accum, "max length": self.max_length}
        for name, value in ints.items():
            if value < 1:
                raise PersonaError(f"{name} must be at least 1, got {value}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise PersonaError(f"learning rate must be positive, got {self.learning_rate}")
        if self.alpha <= 0:
            raise PersonaError(f"LoRA alpha must be positive, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise PersonaError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise PersonaError(f"warm-up steps must be >= 0, got {self.warmup_steps}")


# ---------------------------------------------------------------------------------------------
# The run


@dataclass
class FinetuneResult:
    """The run record and whether an identical finished run was found instead of training."""

    out: Path
    record: dict[str, Any]
    reused: bool = False


def read_run(out: str | Path) -> dict[str, Any] | None:
    """The ``persona_run.json`` of an adapter directory, or None."""
    path = Path(out) / RUN_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _precheck_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise PersonaError(f"{out} is a file; --out must be a directory for the adapter")
    if overwrite or not out.exists() or not any(out.iterdir()):
        return
    if read_run(out) is None:
        raise PersonaError(
            f"{out} is not empty and holds no persona run: choose another --out or pass --overwrite"
        )


def finetune(
    data: ChatData,
    model: str,
    out: str | Path,
    options: FinetuneOptions | None = None,
    edits: Sequence[EditSpec] = (),
    *,
    vectors: str | Path | None = "vectors",
    layer_hint: LayerHint | None = None,
    overwrite: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> FinetuneResult:
    """Train a LoRA adapter on ``data`` over base ``model`` and write it to ``out``."""
    from persona.model.loading import default_device, fingerprint, resolve

    options = options or FinetuneOptions()
    options.check()
    out = Path(out)
    _precheck_out(out, overwrite)
    source = resolve(model)
    if source.adapter:
        raise PersonaError(
            f"{model} is a LoRA adapter; fine-tune from its base model instead (stacking "
            "adapters is not supported)"
        )
    device = device or default_device()
    net, tokenizer = _load_fresh(source, options.dtype, device)
    base_fp = fingerprint(net)
    num_layers, hidden = int(net.config.num_hidden_layers), int(net.config.hidden_size)
    train_edits, edit_records = resolve_edits(
        edits,
        vectors,
        model_id=source.model_id,
        num_layers=num_layers,
        hidden_size=hidden,
        fingerprint=base_fp,
        layer_hint=layer_hint,
    )
    identity = {
        "base_fingerprint": base_fp,
        "data_sha256": data.sha256,
        "skipped_lines": [n for n, _ in data.skipped],
        "options": _options_dict(options),
        # a vector is identified by its content hash, not by its path
        "steer": _by_kind(edit_records, train_edits, "steer", with_path=False),
        "ablate": _by_kind(edit_records, train_edits, "ablate", with_path=False),
    }
    run_id = hash_json(identity)[:16]
    existing = read_run(out)
    if existing is not None and not overwrite:
        if existing.get("run_id") == run_id:
            return FinetuneResult(out, existing, reused=True)
        raise PersonaError(
            f"{out} already holds a different run ({existing.get('run_id')}, data "
            f"{str(existing.get('data_sha256'))[:12]}): choose another --out or pass --overwrite"
        )
    encoded = encode_dataset(tokenizer, data, options.max_length)
    peft_model, targets = _wrap_lora(net, options)
    started = time.time()
    # Training runs in the weights' dtype even under a caller's CPU autocast: in bfloat16 the
    # small LoRA deltas vanish next to the base layer's output, and the run learns nothing.
    with torch.autocast("cpu", enabled=False), training_edits(peft_model, train_edits):
        losses = _train(peft_model, encoded, options, device, progress)
    if hook_count(peft_model):
        raise PersonaError("internal error: training hooks were not removed")  # pragma: no cover
    peft_model.eval()
    record = _record(
        _portable_spec(model, source.kind),
        source.model_id,
        run_id,
        identity,
        data,
        encoded,
        options,
        targets,
        edit_records,
        train_edits,
        losses,
        time.time() - started,
    )
    with atomic_dir(out) as tmp:
        peft_model.save_pretrained(str(tmp))
        (tmp / RUN_FILE).write_text(json.dumps(record, indent=2))
    return FinetuneResult(out, record)


def _portable_spec(spec: str, kind: str) -> str:
    """The base spec as given for aliases and hub ids; an absolute path for local models."""
    return spec if kind in ("embedded", "hub") else str(Path(spec).expanduser().resolve())


def _by_kind(
    records: list[dict[str, Any]], edits: list[TrainingEdit], kind: str, with_path: bool = True
) -> list[dict[str, Any]]:
    """The records of one kind of edit (optionally without the vector file path)."""
    out = [r for r, e in zip(records, edits, strict=True) if e.kind == kind]
    return out if with_path else [{k: v for k, v in r.items() if k != "vector"} for r in out]


def _options_dict(options: FinetuneOptions) -> dict[str, Any]:
    d = asdict(options)
    d["target_modules"] = list(options.target_modules) if options.target_modules else None
    return d


def _load_fresh(source: Any, dtype: str | None, device: str) -> tuple[Any, Any]:
    """A private copy of the base model for training (not the shared inference instance)."""
    from persona.model.loading import _load_base

    net, tokenizer = _load_base(source, dtype, device, False)
    tokenizer.padding_side = "right"
    return net, tokenizer


def _target_modules(net: torch.nn.Module, options: FinetuneOptions) -> list[str] | str:
    if options.target_modules:
        return list(options.target_modules)
    present = {name.rsplit(".", 1)[-1] for name, _ in net.named_modules()}
    found = [t for t in DEFAULT_TARGETS if t in present]
    return found or "all-linear"


def _wrap_lora(net: torch.nn.Module, options: FinetuneOptions) -> tuple[Any, list[str] | str]:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(options.seed)
    targets = _target_modules(net, options)
    config = LoraConfig(
        r=options.rank,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        use_rslora=options.rslora,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = get_peft_model(net, config)
    except ValueError as e:
        raise PersonaError(f"cannot attach LoRA: {str(e).splitlines()[0]}") from None
    return peft_model, targets


def _batches(n: int, options: FinetuneOptions, epoch: int) -> list[list[list[int]]]:
    """Optimizer steps of an epoch: each a list of micro-batches of sample indices."""
    order = list(range(n))
    random.Random(options.seed * 1_000_003 + epoch).shuffle(order)
    micro = [order[i : i + options.batch_size] for i in range(0, n, options.batch_size)]
    return [micro[i : i + options.grad_accum] for i in range(0, len(micro), options.grad_accum)]


def _collate(items: Sequence[Encoded], pad_id: int, device: Any) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, e in enumerate(items):  # right padding: pads follow every target token
        ids[row, : len(e.input_ids)] = torch.tensor(e.input_ids)
        labels[row, : len(e.labels)] = torch.tensor(e.labels)
        mask[row, : len(e.input_ids)] = 1
    return {"input_ids": ids.to(device), "labels": labels.to(device), "mask": mask.to(device)}


def _targets(labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The label columns from the first target of any row on, and that column (at least 1:
    position 0 predicts nothing); logits at columns ``first - 1 ..`` predict them."""
    has = (labels != IGNORE).any(0).nonzero()
    first = max(1, int(has[0])) if len(has) else 1
    return labels[:, first:], first


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (total - step) / max(1, total - warmup))


@dataclass
class _Losses:
    steps: list[float] = field(default_factory=list)
    epochs: list[float] = field(default_factory=list)


def _train(
    model: Any, data: EncodedData, options: FinetuneOptions, device: Any, progress: bool
) -> _Losses:
    import torch.nn.functional as F

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=options.learning_rate, weight_decay=options.weight_decay
    )
    per_epoch = [_batches(len(data.items), options, e) for e in range(options.epochs)]
    total = sum(len(steps) for steps in per_epoch)
    warmup = options.warmup_steps if options.warmup_steps is not None else total // 10
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _lr_factor(s, total, min(warmup, total))
    )
    pad_id = model.config.pad_token_id
    pad_id = 0 if pad_id is None else int(pad_id)
    torch.manual_seed(options.seed)
    losses = _Losses()
    model.train()
    with _loss_bar(total, progress) as report:
        for steps in per_epoch:
            epoch_sum, epoch_tokens = 0.0, 0
            for micro_batches in steps:
                n_tokens = sum(data.items[i].n_target for mb in micro_batches for i in mb)
                step_sum = 0.0
                for mb in micro_batches:
                    batch = _collate([data.items[i] for i in mb], pad_id, device)
                    labels, first = _targets(batch["labels"])
                    # the LM head runs only where a target is predicted (a third of the
                    # positions are prompt): the same loss for less work
                    logits = model(
                        input_ids=batch["input_ids"],
                        attention_mask=batch["mask"],
                        logits_to_keep=torch.arange(
                            first - 1, batch["labels"].shape[1] - 1, device=device
                        ),
                    ).logits
                    loss_sum = F.cross_entropy(
                        logits.flatten(0, 1).float(),
                        labels.flatten(),
                        ignore_index=IGNORE,
                        reduction="sum",
                    )
                    (loss_sum / n_tokens).backward()
                    step_sum += float(loss_sum.detach())
                if options.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(params, options.max_grad_norm)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                loss = step_sum / n_tokens
                if not math.isfinite(loss):
                    raise PersonaError(
                        f"training diverged (loss {loss}) at step {len(losses.steps) + 1}: "
                        "lower the learning rate or the steering coefficient"
                    )
                losses.steps.append(loss)
                epoch_sum, epoch_tokens = epoch_sum + step_sum, epoch_tokens + n_tokens
                report(loss)
            losses.epochs.append(epoch_sum / epoch_tokens)
    model.eval()
    return losses


@contextmanager
def _loss_bar(total: int, enabled: bool) -> Iterator[Callable[[float], None]]:
    """A rich bar with the running loss on a terminal; a few plain lines otherwise."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    done = 0
    if enabled and sys.stderr.isatty():
        columns = (
            TextColumn("[bold]fine-tuning"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns) as bar:
            task = bar.add_task("fine-tuning", total=total, loss="-")
            yield lambda loss: bar.update(task, advance=1, loss=f"{loss:.4f}")
        return
    every = max(1, total // 10)

    def report(loss: float) -> None:
        nonlocal done
        done += 1
        if enabled and (done % every == 0 or done == total):
            print(f"fine-tuning: step {done}/{total} loss {loss:.4f}", file=sys.stderr)

    yield report


def _record(
    spec: str,
    model_id: str,
    run_id: str,
    identity: dict[str, Any],
    data: ChatData,
    encoded: EncodedData,
    options: FinetuneOptions,
    targets: list[str] | str,
    edit_records: list[dict[str, Any]],
    edits: list[TrainingEdit],
    losses: _Losses,
    seconds: float,
) -> dict[str, Any]:
    import peft
    import transformers

    from persona import __version__

    return {
        "format": RUN_FORMAT,
        "run_id": run_id,
        "base_model": spec,
        "model_id": model_id,
        "base_fingerprint": identity["base_fingerprint"],
        "data": {
            "path": str(data.path.resolve()),
            "sha256": data.sha256,
            "samples": len(data),
            "trained_samples": len(encoded.items),
            "target_tokens": encoded.target_tokens,
            "truncated": encoded.truncated,
            "dropped_lines": encoded.dropped,
            "skipped_invalid": len(data.skipped),
            "skipped_lines": identity["skipped_lines"],
        },
        "data_sha256": data.sha256,
        "options": identity["options"],
        "lora_target_modules": targets,
        "steer": _by_kind(edit_records, edits, "steer"),
        "ablate": _by_kind(edit_records, edits, "ablate"),
        "edits_during": "training forward passes only (removed before saving and evaluation)",
        "steps": len(losses.steps),
        "final_loss": losses.steps[-1] if losses.steps else None,
        "epoch_loss": losses.epochs,
        "loss_history": losses.steps,
        "duration_s": round(seconds, 2),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {
            "persona": __version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
    }
