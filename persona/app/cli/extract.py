"""``persona extract``: run the ``extract_vector`` task and write the persona vector.

A thin wrapper over ``inspect_ai.eval(evals/extract_vector ...)``: the log goes to ``--log-dir``
and the vector to ``<vectors>/<model-slug>/<trait>.safetensors``. ``--from-log`` re-filters an
existing extraction log (other thresholds, filter on/off) without generating again.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from persona import validate as check
from persona.app.cli.options import as_flags, deprecated
from persona.errors import PersonaError
from persona.validate import InputError

SCORE = check.number(0.0, 100.0)  # judge scores and their thresholds


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract",
        help="extract a persona vector (contrastive prompts, judged, filtered)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--trait", required=True, help="trait name or path to a trait YAML file")
    p.add_argument("--model", default="smollm2-135m", help="alias, folder or hub id")
    p.add_argument(
        "--adapter",
        type=check.adapter_dir,
        default=None,
        help="PEFT adapter folder on top of the model",
    )
    p.add_argument(
        "--vectors", type=check.output_dir, default="vectors", help="vectors folder to write"
    )
    deprecated(p, "--out", "--vectors", type=check.output_dir)
    flt = p.add_mutually_exclusive_group()
    flt.add_argument(
        "--filter",
        dest="filter",
        action="store_true",
        default=None,
        help="keep only judge-confirmed pairs (default when --judge is given)",
    )
    flt.add_argument(
        "--no-filter",
        dest="filter",
        action="store_false",
        help="keep every pair (default without --judge)",
    )
    p.add_argument("--judge", default=None, help="judge model, e.g. openai/gpt-4.1-mini")
    p.add_argument(
        "--no-judge", action="store_true", help="skip judging (faster; implies --no-filter)"
    )
    p.add_argument(
        "--self-judge",
        action="store_true",
        help="without --judge, let the model judge itself 0-100 (default: the likelihood judge "
        "instead; see docs/judges.md)",
    )
    p.add_argument(
        "--questions", type=check.count, default=None, help="first N questions (default 20)"
    )
    p.add_argument("--rollouts", type=check.count, default=1, help="replies per prompt (paper: 10)")
    p.add_argument(
        "--max-new-tokens", type=check.count, default=256, help="reply length (paper: 1000)"
    )
    p.add_argument("--temperature", type=check.temperature, default=1.0)
    p.add_argument("--trait-threshold", type=SCORE, default=50.0)
    p.add_argument("--coherence-threshold", type=SCORE, default=50.0)
    p.add_argument("--min-pairs", type=check.count, default=10)
    p.add_argument(
        "--log-dir",
        type=check.output_dir,
        default="logs",
        help="Inspect log folder (default: logs)",
    )
    p.add_argument(
        "--from-log",
        default=None,
        help="post-process this extraction log only",
    )
    p.add_argument("--max-connections", type=check.count, default=None, help="concurrent samples")
    p.set_defaults(func=run)


def _model_string(model: str) -> str:
    return model if model.startswith("persona/") else f"persona/{model}"


def run(args: argparse.Namespace) -> int:
    from persona.analysis.extraction import vector_from_log

    if args.no_judge and (args.filter or args.judge):
        raise PersonaError("--no-judge cannot be combined with --filter or --judge")
    if args.self_judge and (args.no_judge or args.judge):
        raise PersonaError("--self-judge cannot be combined with --no-judge or --judge")
    if args.filter and not (args.judge or args.self_judge or args.from_log):
        raise PersonaError("--filter needs 0-100 judge scores: pass --judge MODEL or --self-judge")
    overrides = {
        "enabled": args.filter,
        "trait_threshold": args.trait_threshold,
        "coherence_threshold": args.coherence_threshold,
        "min_pairs": args.min_pairs,
    }
    if args.from_log:
        log = _read_log_header(check.input_file(args.from_log), args.trait)
        result = vector_from_log(log, out_dir=args.vectors, **overrides)
    else:
        _check_pairs_reachable(args)
        result = vector_from_log(_run_task(args), out_dir=args.vectors, **overrides)
    for message in result.messages:
        print(message, file=sys.stderr)
    info = result.filter_info
    print(f"{result.path}  (kept {info['kept']} of {info['total']} pairs)")
    return 0


def _read_log_header(path: str, trait_arg: str):
    """The header of an extraction log of trait ``trait_arg``; one clear error otherwise."""
    from inspect_ai.log import read_eval_log

    import traits

    trait = traits.load(trait_arg)
    try:
        log = read_eval_log(path, header_only=True)
    except Exception:  # noqa: BLE001 - bad JSON, not a zip, unknown format: all "not a log"
        raise PersonaError(f"{path} is not an Inspect log (.eval or .json)") from None
    found = (log.eval.metadata or {}).get("trait")
    if found and found != trait.name:
        raise PersonaError(f"{path} is an extraction log of {found!r}, not of {trait.name!r}")
    return log


def _check_pairs_reachable(args: argparse.Namespace) -> None:
    """Refuse, before generating, a run that cannot produce ``--min-pairs`` pairs."""
    import traits

    trait = traits.load(args.trait)
    questions = min(args.questions or len(trait.extract_questions), len(trait.extract_questions))
    most = questions * len(trait.instructions) * args.rollouts
    if most < args.min_pairs:
        raise PersonaError(
            f"{questions} question(s) x {len(trait.instructions)} instructions x "
            f"{args.rollouts} rollout(s) give at most {most} pairs, fewer than --min-pairs "
            f"{args.min_pairs}: raise --questions or --rollouts, or lower --min-pairs"
        )


def _run_task(args: argparse.Namespace):
    from inspect_ai import eval as inspect_eval

    from evals._postprocess import postprocess_disabled
    from evals.extract_vector import extract_vector

    try:
        task = _build_task(args, extract_vector)
    except InputError as e:
        raise PersonaError(as_flags(str(e), {"max_tokens": "--max-new-tokens"})) from None
    model_args = {"adapter": args.adapter} if args.adapter else {}
    with postprocess_disabled():
        logs = inspect_eval(
            task,
            model=_model_string(args.model),
            model_args=model_args,
            model_roles={"judge": args.judge} if args.judge else None,
            log_dir=args.log_dir,
            max_connections=args.max_connections,
        )
    log = logs[0]
    if log.status != "success":
        error = log.error.message.splitlines()[-1] if log.error else log.status
        raise PersonaError(
            f"extraction did not finish ({error}); the log is {log.location} (resume it with "
            "`inspect eval-retry` and then run `persona extract --from-log LOG`)"
        )
    return log


def _build_task(args: argparse.Namespace, extract_vector: Any) -> Any:
    """The ``extract_vector`` task for the verb's arguments (checked as ``-T`` arguments are)."""
    return extract_vector(
        trait=args.trait,
        questions=args.questions,
        rollouts=args.rollouts,
        vectors=args.vectors,
        filter=args.filter,
        trait_threshold=args.trait_threshold,
        coherence_threshold=args.coherence_threshold,
        min_pairs=args.min_pairs,
        max_tokens=args.max_new_tokens,
        temperature=args.temperature,
        judge=not args.no_judge,
        self_judge=args.self_judge,
    )
