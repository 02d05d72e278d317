"""What ``inspect view`` shows for a run without a judge (the default offline path), read through
Inspect's own API: the likelihood measure is the headline, no metric is NaN, each sample's
answer is its reply, and checkpoint_shift reports the likelihood change per checkpoint."""

from __future__ import annotations

import math

from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log_sample_summaries
from test_task_names import away  # noqa: F401  (the temp-folder fixture)

from persona.app.registry import NAMESPACE

FAST = {"trait": "evil", "questions": 3, "max_tokens": 3}  # 3: a correlation is defined


def _run(folder, tiny_dir, task: str, **args):
    log = inspect_eval(
        f"{NAMESPACE}/{task}",
        task_args={**FAST, **args},
        model=f"persona/{tiny_dir}",
        display="none",
        log_dir=str(folder / "view-logs"),
    )[0]
    assert log.status == "success", log.error
    return log


def _metrics(log) -> dict[str, float]:
    return {f"{s.name}/{k}": m.value for s in log.results.scores for k, m in s.metrics.items()}


def _check_view(log) -> dict[str, float]:
    metrics = _metrics(log)
    headline = log.results.scores[0]  # Inspect's summary and the viewer's header lead with it
    assert headline.name == "persona_score", [s.name for s in log.results.scores]
    assert list(headline.metrics)[0] == "likelihood"
    values = [s.scores["persona_score"].value["likelihood"] for s in log.samples]
    assert headline.metrics["likelihood"].value == sum(values) / len(values)
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    assert not any(k.startswith(("trait/", "coherence/")) for k in metrics)  # never measured
    summaries = read_eval_log_sample_summaries(log.location)  # the viewer's sample list
    replies = {s.id: s.output.completion for s in log.samples}
    assert summaries and all(s.scores for s in summaries)
    for sample in log.samples:
        assert sample.scores["persona_score"].answer == replies[sample.id]
    for summary in summaries:  # the list's answer column (Inspect strips its whitespace)
        assert summary.scores["persona_score"].answer == replies[summary.id].strip()
    return metrics


def test_trait_eval_leads_with_the_likelihood_and_shows_replies(away, tiny_dir):  # noqa: F811
    folder, _ = away
    metrics = _check_view(_run(folder, tiny_dir, "trait_eval"))
    assert any(k.startswith("persona_score/pearson_likelihood_") for k in metrics)


def test_checkpoint_shift_has_a_likelihood_change_metric(away, tiny_dir):  # noqa: F811
    folder, adapter = away
    log = _run(folder, tiny_dir, "checkpoint_shift", checkpoints=f"ft={adapter}")
    metrics = _check_view(log)
    rows = {s.metadata["checkpoint"]: [] for s in log.samples}
    for s in log.samples:
        rows[s.metadata["checkpoint"]].append(s.scores["persona_score"].value["likelihood"])
    expect = sum(rows["ft"]) / len(rows["ft"]) - sum(rows["base"]) / len(rows["base"])
    assert metrics["persona_score/likelihood_delta_ft"] == expect
