"""``persona judge``: score replies with the likelihood judge (or an LLM judge), and validate it.

persona judge DATA.jsonl --trait T [--model M] [--judge MODEL] --out FILE.csv
    scores the last assistant reply of every line of a chat JSONL: one CSV row per line, in
    input order. By default the likelihood judge (docs/judges.md) computed by --model
    (teacher-forced, no adapter, no steering); with --judge an LLM judge (0-100 rubric).
persona judge validate [--traits a,b] [--model M] [--self-judge]
    prints each trait's AUROC on its labelled set (traits/validation/<trait>.jsonl) for the
    likelihood judge and, with --self-judge, for the 0-100 rubric judged by --model itself.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import math
import sys
from pathlib import Path

from persona.errors import PersonaError

VALIDATE = "validate"
DEFAULT_MODEL = "smollm2-135m"
MIN_AUROC = 0.85
"""The likelihood judge counts as a behaviour measure for a trait from this AUROC on its held-out
labelled set; a trait below it carries ``offline_measure_unsupported`` (docs/judges.md)."""
CONCURRENCY = 8


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "judge",
        help="score chat replies with the likelihood judge (or an LLM judge); validate it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data", metavar="DATA.jsonl|validate", help="chat JSONL file, or 'validate'")
    p.add_argument("--trait", help="trait name or path to a trait YAML file (scoring)")
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="model that computes the likelihood judge: alias, folder or hub id, optionally as "
        f"persona/<model> (default: {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--judge",
        default=None,
        help="score with this LLM judge (Inspect model string, 0-100 rubric) instead",
    )
    p.add_argument("--out", help="CSV file to write (scoring)")
    p.add_argument("--traits", help="validate: comma-separated traits (default: all)")
    p.add_argument(
        "--self-judge",
        action="store_true",
        help="validate: also the 0-100 rubric judged by --model itself (slower)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.data == VALIDATE and not Path(VALIDATE).exists():
        if args.trait or args.out or args.judge:
            raise PersonaError("judge validate takes --traits, --model and --self-judge only")
        return validate(args)
    if args.traits or args.self_judge:
        raise PersonaError("--traits and --self-judge belong to `persona judge validate`")
    if not args.trait or not args.out:
        raise PersonaError("persona judge DATA.jsonl needs --trait and --out")
    return score_file(args)


# ---------------------------------------------------------------------------------------------
# Models


def _api_providers() -> set[str]:
    """Names of the Inspect model providers (``openai``, ``anthropic``, ...)."""
    import inspect_ai.model._providers.providers  # noqa: F401 - registers the providers
    from inspect_ai._util.registry import registry_find, registry_info

    names = (registry_info(x).name for x in registry_find(lambda i: i.type == "modelapi"))
    return {n.rsplit("/", 1)[-1] for n in names}


def local_spec(model: str) -> str:
    """The local-model spec behind ``model``; an API model (e.g. ``openai/...``) is an error:
    the likelihood judge teacher-forces replies, which needs the model's weights."""
    if model.startswith("persona/"):
        return model.removeprefix("persona/")
    provider = model.split("/", 1)[0] if "/" in model else ""
    if provider and not Path(model).expanduser().exists() and provider in _api_providers():
        raise PersonaError(
            f"the likelihood judge cannot use {model}: it teacher-forces replies, which needs a "
            "local model (an alias, a folder or persona/<model>); use --judge for an API judge"
        )
    return model


def _engine(model: str, device: str | None):
    from persona.model.engine import Engine
    from persona.model.loading import load_model

    return Engine(load_model(local_spec(model), device=device))


# ---------------------------------------------------------------------------------------------
# Scoring a chat JSONL


def _question(prompt: list[dict[str, str]]) -> str:
    users = [m["content"] for m in prompt if m["role"] == "user"]
    return users[-1] if users else ""


def score_file(args: argparse.Namespace) -> int:
    import traits
    from persona.analysis.judge import LIKELIHOOD_UNIT
    from persona.atomic import write_text
    from persona.data.chatdata import load_chat_jsonl

    trait = traits.load(args.trait)
    out = Path(args.out)
    if out.is_dir():
        raise PersonaError(f"--out {out} is a folder; give a .csv file name")
    data = load_chat_jsonl(args.data)
    if args.judge:
        rows = _llm_rows(trait, data.samples, args.judge)
    else:
        if (warning := trait.offline_measure_warning()) is not None:
            print(f"warning: {warning}", file=sys.stderr)
        personas = [(p.pos, p.neg) for p in trait.need_judge_personas()]
        values = _likelihood(_engine(args.model, args.device), personas, data.samples)
        name = args.model if args.model.startswith("persona/") else f"persona/{args.model}"
        rows = [
            (v, "likelihood", LIKELIHOOD_UNIT, name, "empty_reply" if math.isnan(v) else "")
            for v in values
        ]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["line", "trait", "score", "measure", "unit", "judge", "reason"])
    for sample, (value, measure, unit, judge, reason) in zip(data.samples, rows, strict=True):
        shown = "" if math.isnan(value) else f"{value:.6g}"
        writer.writerow([sample.line, trait.name, shown, measure, unit, judge, reason])
    write_text(out, buf.getvalue())
    print(f"{out}  ({len(rows)} replies, {rows[0][1] if rows else 'likelihood'} judge)")
    return 0


def _likelihood(engine, personas: list[tuple[str, str]], samples) -> list[float]:
    from persona.analysis.likelihood import Reply, likelihood_scores
    from persona.progress import progress_bar

    replies = [Reply(s.prompt, s.response) for s in samples]
    with progress_bar("likelihood judge", len(replies)) as advance:
        return likelihood_scores(engine, personas, replies, progress=advance)


def _llm_rows(trait, samples, judge_name: str) -> list[tuple[float, str, str, str, str]]:
    """0-100 rubric scores by an LLM judge (Inspect model), through the scorers' judge calls."""
    from inspect_ai.model import get_model

    from persona.progress import progress_bar
    from scorers.judging import Judge, ask, pick_mode

    judge = Judge(get_model(judge_name), judge_name, is_subject=False)
    mode = pick_mode(judge)

    async def all_rows() -> list[tuple[float, str, str, str, str]]:
        gate = asyncio.Semaphore(CONCURRENCY)
        with progress_bar(f"judge {judge_name}", len(samples)) as advance:

            async def one(sample) -> tuple[float, str, str, str, str]:
                prompt = trait.judge_prompt(_question(sample.prompt), sample.response)
                async with gate:
                    result = await ask(judge, prompt, mode)
                advance(1)
                return (result.value, f"judge_{mode}", "0-100", judge_name, result.reason or "")

            return list(await asyncio.gather(*(one(s) for s in samples)))

    return asyncio.run(all_rows())


# ---------------------------------------------------------------------------------------------
# Validation on the labelled sets


def validation_file(trait: str) -> Path:
    """The labelled set shipped for a trait: chat lines with ``label`` 1 (trait) or 0."""
    from traits.loader import BUNDLED_DIR

    return BUNDLED_DIR / "validation" / f"{trait}.jsonl"


def _labels(samples, path: Path) -> list[int]:
    labels = [s.record.get("label") for s in samples]
    bad = [s.line for s, y in zip(samples, labels, strict=True) if y not in (0, 1)]
    if bad:
        raise PersonaError(f"{path}: line {bad[0]}: 'label' must be 0 or 1")
    return [int(y) for y in labels]  # type: ignore[arg-type]


def _auroc(values: list[float], labels: list[int]) -> float:
    from persona.data.screen import auroc

    pos = [v for v, y in zip(values, labels, strict=True) if y == 1 and not math.isnan(v)]
    neg = [v for v, y in zip(values, labels, strict=True) if y == 0 and not math.isnan(v)]
    return auroc(pos, neg) if pos and neg else math.nan


def _self_judge(engine, trait, samples) -> tuple[list[float], int]:
    """The 0-100 rubric judged by the engine's own model (candidates mode, as in tasks), and how
    many judgements tasks would leave unscored (numeric mass below ``MIN_MASS``).

    The scores here use any numeric mass (``min_mass`` 0), so the AUROC shows what signal the
    self-judge has at all, not only on the replies a task would score.
    """
    from persona.analysis.judge import CANDIDATES, MIN_MASS, REFUSAL, aggregate_candidates
    from persona.progress import progress_bar

    out, low = [], 0
    with progress_bar(f"self-judge {trait.name}", len(samples)) as advance:
        for s in samples:
            prompt = [
                {"role": "user", "content": trait.judge_prompt(_question(s.prompt), s.response)}
            ]
            cands = [*CANDIDATES, REFUSAL]
            lps = engine.candidate_logprobs(prompt, cands)
            judged = aggregate_candidates(dict(zip(cands, lps, strict=True)), min_mass=0.0)
            out.append(judged.value)
            low += judged.mass is None or judged.mass < MIN_MASS
            advance(1)
    return out, low


def validate(args: argparse.Namespace) -> int:
    import traits
    from persona.analysis.judge import MIN_MASS
    from persona.data.chatdata import load_chat_jsonl

    names = [t.strip() for t in args.traits.split(",")] if args.traits else traits.available()
    chosen = []
    for name in names:
        path = validation_file(name)
        if not path.is_file():
            raise PersonaError(f"no labelled set for trait {name!r} (expected {path})")
        chosen.append((traits.load(name), path))
    engine = _engine(args.model, args.device)
    rows = []
    for trait, path in chosen:
        samples = load_chat_jsonl(path).samples
        labels = _labels(samples, path)
        personas = [(p.pos, p.neg) for p in trait.need_judge_personas()]
        likelihood = _auroc(_likelihood(engine, personas, samples), labels)
        judged, low = None, None
        if args.self_judge:
            values, low = _self_judge(engine, trait, samples)
            judged = _auroc(values, labels)
        rows.append((trait, labels.count(1), labels.count(0), likelihood, judged, low))
    print(f"AUROC on the labelled sets (judge model {engine.lm.name}):")
    head = f"{'trait':<15} {'n+':>4} {'n-':>4}  {'likelihood':>10}  {'self-judge 0-100':>16}"
    print(head + ("  low mass" if args.self_judge else ""))
    for trait, npos, nneg, lk, sj, low in rows:
        shown = "not run" if sj is None else f"{sj:.3f}"
        line = f"{trait.name:<15} {npos:>4} {nneg:>4}  {lk:>10.3f}  {shown:>16}"
        line += f"  {low:>4}/{npos + nneg}" if low is not None else ""
        print(line + ("  (marked unsupported)" if trait.offline_measure_unsupported else ""))
    if args.self_judge:
        print("(self-judge scores use any numeric mass; 'low mass': replies a task would leave")
        print(f" unscored, numeric mass < {MIN_MASS})")
    else:
        print("(pass --self-judge for the 0-100 self-judge column)")
    for trait, *_, lk, _sj, _low in rows:
        if (warning := trait.offline_measure_warning()) is not None:
            print(f"warning: {warning}")
        elif not lk >= MIN_AUROC:
            print(
                f"warning: trait {trait.name!r}: likelihood AUROC {lk:.3f} < {MIN_AUROC} and the "
                "trait is not marked offline_measure_unsupported (docs/judges.md)"
            )
    return 0
