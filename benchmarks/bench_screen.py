"""Screening benchmark (issue 5) on smollm2-135m, CPU: throughput ratios side by side in one run.

Screening = ``persona.data.screen.screen`` with warm base-reply cache: teacher-forced projections of
every dataset reply and every base reply at the trait's layer (15 of 30). Throughput is response
tokens scored per second. Compared, over exactly the same token sequences:

- raw batched forward: the same batches (16 sequences, left padded, sorted by length) through the
  whole model, nothing captured (target: screening / raw >= 0.9);
- reference shape: one sample per forward pass with ``output_hidden_states=True`` and the
  projection taken from ``hidden_states[L]`` (as the paper's cal_projection does; here under
  ``inference_mode``, which the reference lacks) (target: screening / reference >= 3);
- for information: the reference shape as cal_projection is written (a model loaded with
  ``from_pretrained`` defaults and no ``no_grad``, so autograd records every pass), and a raw
  batched forward that also stops after layer L (our bookkeeping cost alone).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from benchmarks.common import interleaved, print_ratios, record  # noqa: E402
from persona.data.chatdata import load_chat_jsonl, write_jsonl  # noqa: E402
from persona.data.question_pool import EVERYDAY  # noqa: E402
from persona.data.screen import ScreenOptions, base_responses, screen  # noqa: E402
from persona.model.engine import Engine  # noqa: E402
from persona.model.loading import embedded_model_dir, load_model  # noqa: E402
from persona.model.residual_hooks import StopForward, residual_hooks  # noqa: E402
from persona.model.vectors import PersonaVector  # noqa: E402

N_SAMPLES = 32
MAX_BATCH = 16
BASE_TOKENS = 48


def dataset(path: Path) -> None:
    """Prompts from the everyday pool; replies of varied length made of other pool sentences."""
    recs = []
    for i in range(N_SAMPLES):
        reply = " ".join(EVERYDAY[(i + k) % len(EVERYDAY)] for k in range(1, 2 + i % 5))
        recs.append(
            {
                "messages": [
                    {"role": "user", "content": EVERYDAY[i]},
                    {"role": "assistant", "content": "Here is what I think. " + reply},
                ]
            }
        )
    write_jsonl(path, recs)


def main() -> None:
    torch.manual_seed(0)
    lm = load_model("smollm2-135m", device="cpu")
    n, d = lm.num_layers, lm.hidden_size
    layer = n // 2
    probe = torch.randn(n + 1, d)
    vector = PersonaVector(probe, probe.clone(), probe.clone(), meta={"trait": "bench"})
    tmp = Path(tempfile.mkdtemp(prefix="bench-screen-"))
    dataset(tmp / "data.jsonl")
    data = load_chat_jsonl(tmp / "data.jsonl")
    prompts = [s.prompt for s in data.samples]
    t0 = time.perf_counter()
    base, _, generated = base_responses(lm, prompts, max_new_tokens=BASE_TOKENS, max_batch=16)
    base_s = time.perf_counter() - t0
    opts = ScreenOptions(max_new_tokens=BASE_TOKENS, max_batch=MAX_BATCH)

    engine = Engine(lm, max_batch=MAX_BATCH)
    tok = lm.tokenizer
    seqs = []  # (prompt ids, response ids) of every scored pair, as screening tokenises them
    for s, b in zip(data.samples, base, strict=True):
        p = engine.render(s.prompt)
        seqs.append((p, tok(s.response, add_special_tokens=False)["input_ids"]))
        seqs.append((p, tok(b, add_special_tokens=False)["input_ids"]))
    response_tokens = sum(len(r) for _, r in seqs)
    order = sorted(range(len(seqs)), key=lambda i: sum(map(len, seqs[i])))
    batches = []
    for start in range(0, len(order), MAX_BATCH):
        rows = [seqs[i][0] + seqs[i][1] for i in order[start : start + MAX_BATCH]]
        t = max(map(len, rows))
        ids = torch.full((len(rows), t), engine.pad_id)
        attn = torch.zeros((len(rows), t), dtype=torch.long)
        for r, x in enumerate(rows):
            ids[r, t - len(x) :] = torch.tensor(x)
            attn[r, t - len(x) :] = 1
        batches.append((ids, attn, (attn.cumsum(-1) - 1).clamp(min=0)))
    unit = probe[layer] / probe[layer].norm()

    def raw_forward() -> None:
        with torch.inference_mode():
            for ids, attn, pos in batches:
                lm.model(input_ids=ids, attention_mask=attn, position_ids=pos)

    def raw_truncated() -> None:
        def stop(_layer: int, _h: torch.Tensor) -> None:
            raise StopForward

        with torch.inference_mode(), residual_hooks(lm.model, [layer], stop):
            for ids, attn, pos in batches:
                try:
                    lm.model(input_ids=ids, attention_mask=attn, position_ids=pos)
                except StopForward:
                    pass

    def reference_shape() -> None:
        with torch.inference_mode():
            for p, r in seqs:
                out = lm.model(input_ids=torch.tensor([p + r]), output_hidden_states=True)
                _ = float(out.hidden_states[layer][0, len(p) :].mean(0) @ unit)

    # as cal_projection is written: a model loaded with from_pretrained defaults, autograd on
    written = AutoModelForCausalLM.from_pretrained(str(embedded_model_dir("smollm2-135m"))).eval()

    def reference_as_written() -> None:
        for p, r in seqs:
            out = written(input_ids=torch.tensor([p + r]), output_hidden_states=True)
            _ = float(out.hidden_states[layer][0, len(p) :].mean(0) @ unit)

    times = interleaved(
        {
            "screening": lambda: screen(lm, data, vector, layer, opts),
            "raw_forward": raw_forward,
            "raw_truncated": raw_truncated,
            "reference": reference_shape,
            "reference_as_written": reference_as_written,
        },
        reps=5,
    )
    tps = {k: response_tokens / v for k, v in times.items()}
    ratios = {
        "screening_over_raw_forward": tps["screening"] / tps["raw_forward"],
        "screening_over_reference_shape": tps["screening"] / tps["reference"],
        "screening_over_raw_truncated": tps["screening"] / tps["raw_truncated"],
        "screening_over_reference_as_written": tps["screening"] / tps["reference_as_written"],
    }
    print(
        f"smollm2-135m, CPU ({torch.get_num_threads()} threads): {N_SAMPLES} samples, "
        f"{len(seqs)} scored pairs, {response_tokens} response tokens, layer {layer}; "
        f"base replies: {generated} generated in {base_s:.1f} s (then cached)"
    )
    for k, v in tps.items():
        print(f"  {k:<15} {v:9.1f} response tokens/s   ({times[k]:.2f} s)")
    table = print_ratios(
        "screening throughput ratios (median of interleaved runs)",
        [
            (
                "screening / raw batched forward (same tokens)",
                ratios["screening_over_raw_forward"],
                ">= 0.9",
            ),
            (
                "screening / reference shape (1 sample per forward)",
                ratios["screening_over_reference_shape"],
                ">= 3",
            ),
            (
                "screening / reference as written (autograd on) (info)",
                ratios["screening_over_reference_as_written"],
                "-",
            ),
            (
                "screening / raw batched forward stopped at layer L (info)",
                ratios["screening_over_raw_truncated"],
                "-",
            ),
        ],
    )
    record(
        "screen",
        {"table": table, "ratios": ratios, "tokens_per_s": tps, "response_tokens": response_tokens},
    )


if __name__ == "__main__":
    main()
