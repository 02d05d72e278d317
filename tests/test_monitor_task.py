"""The ``monitor`` task on a tiny random model: graded system prompts and many-shot prompts,
unsteered projections read at the trait's layer, behaviour by the likelihood judge, bad input;
and validation of the trait fields it needs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from inspect_ai import eval as inspect_eval
from test_solvers import save_random_vector

import traits
from persona.analysis.report import build_report
from persona.errors import PersonaError
from persona.model.engine import Engine
from persona.model.loading import load_model
from persona.model.vectors import load_vector

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _env(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INSPECT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.chdir(ROOT)
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def vectors(tiny_dir, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("vectors")
    save_random_vector(d, tiny_dir, "evil", seed=0)
    return d


def run_monitor(tiny_dir: Path, log_dir: Path, **args):
    log = inspect_eval(
        "evals/monitor.py",
        task_args=args,
        model=f"persona/{tiny_dir}",
        display="none",
        log_dir=str(log_dir),
    )[0]
    assert log.status == "success", log.error
    return log


@pytest.fixture(scope="module")
def monitor_log(tiny_dir, vectors, tmp_path_factory):
    return run_monitor(
        tiny_dir,
        tmp_path_factory.mktemp("logs"),
        trait="evil",
        questions=2,
        rollouts=2,
        shots="0,2",
        vectors=str(vectors),
        max_tokens=3,
    )


def test_conditions_questions_and_rollouts(monitor_log):
    samples = monitor_log.samples
    assert len(samples) == (8 + 2) * 2 * 2
    evil = traits.load("evil")
    by_id = {s.id: s for s in samples}
    grade = by_id["system_prompt_5/eval_1/r0"]
    assert grade.metadata["condition"] == "grade 5" and grade.metadata["monitor_level"] == 5
    assert grade.messages[0].role == "system"
    assert grade.messages[0].text == evil.graded_prompts[5]
    shots = by_id["many_shot_2/eval_0/r1"]
    roles = [m.role for m in shots.messages]
    assert roles[:5] == ["user", "assistant", "user", "assistant", "user"]
    assert shots.messages[1].text == evil.monitor_exemplars[0].assistant
    assert shots.messages[4].text == evil.eval_questions[0]
    assert by_id["many_shot_0/eval_0/r0"].messages[0].role == "user"


def test_projection_and_behaviour_per_sample(monitor_log):
    for s in monitor_log.samples:
        score = s.scores["persona_score"]
        assert math.isfinite(score.value["proj_prompt_last"])
        assert math.isfinite(score.value["likelihood"])  # no judge role: the likelihood judge
        assert score.metadata["steering_active"] is False
        assert s.metadata["coef"] == 0.0
    # the projection of a prompt does not depend on the rollout
    proj = {s.id: s.scores["persona_score"].value["proj_prompt_last"] for s in monitor_log.samples}
    for sid, value in proj.items():
        assert proj[sid.replace("/r1", "/r0")] == pytest.approx(value, abs=1e-5)


def test_projection_is_the_unsteered_last_prompt_token_at_the_trait_layer(
    monitor_log, tiny_dir, vectors
):
    sample = next(s for s in monitor_log.samples if s.id == "system_prompt_7/eval_0/r0")
    score = sample.scores["persona_score"]
    layer = score.metadata["layer"]
    lm = load_model(str(tiny_dir), device="cpu")
    prompt = [{"role": m.role, "content": m.text} for m in sample.messages[:-1]]
    ids = torch.tensor([Engine(lm).render(prompt)])
    with torch.no_grad():
        hidden = lm.model(input_ids=ids, output_hidden_states=True).hidden_states[layer]
    vec = load_vector(score.metadata["vector"]).at(layer)
    expect = float(hidden[0, -1].float() @ (vec / vec.norm()))
    assert score.value["proj_prompt_last"] == pytest.approx(expect, rel=1e-4, abs=1e-4)


def _trait_without(tmp_path: Path, *fields: str) -> Path:
    data = yaml.safe_load(traits.load("evil").path.read_text())
    for f in fields:
        data.pop(f)
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"shots": "0,9"}, "shots must be numbers of earlier turns in 0..8"),
        ({"conditions": "steering"}, "conditions must name one or both"),
        (
            {"questions": 0},
            "-T questions: 0 is out of range: must be >= 1 and <= 60 \\(the monitor draws from "
            "'evil''s 20 eval questions, then its 40 monitor_questions\\)",
        ),
        ({"vectors": "nowhere"}, "persona extract --trait evil"),
    ],
)
def test_bad_input_fails_before_generating(args, message, tiny_dir, vectors, tmp_path):
    args = {"trait": "evil", "vectors": str(vectors), **args}
    with pytest.raises(PersonaError, match=message):
        run_monitor(tiny_dir, tmp_path, **args)


@pytest.mark.parametrize("field", ["graded_prompts", "monitor_exemplars"])
def test_trait_without_monitoring_fields(field, tiny_dir, vectors, tmp_path):
    path = _trait_without(tmp_path, field)
    with pytest.raises(PersonaError, match=f"has no {field}"):
        run_monitor(tiny_dir, tmp_path, trait=str(path), vectors=str(vectors))


def test_questions_beyond_the_eval_set_are_the_held_out_monitor_questions(
    tiny_dir, vectors, tmp_path
):
    log = run_monitor(
        tiny_dir,
        tmp_path,
        trait="evil",
        questions=22,
        rollouts=1,
        conditions="many_shot",
        shots="0",
        vectors=str(vectors),
        max_tokens=1,
        judge=False,
    )
    evil = traits.load("evil")
    asked = {s.metadata["question_id"]: s.metadata["question"] for s in log.samples}
    assert len(log.samples) == 22
    assert set(asked) == {f"eval_{i}" for i in range(20)} | {"monitor_0", "monitor_1"}
    assert [asked["monitor_0"], asked["monitor_1"]] == list(evil.monitor_questions[:2])
    last = next(s for s in log.samples if s.id == "many_shot_0/monitor_1/r0")
    assert last.messages[0].text == evil.monitor_questions[1]


def test_report_counts_prompts_not_rollouts(monitor_log):
    rep = build_report([monitor_log.location], n_boot=50)
    m = rep.monitoring.set_index("family")
    assert m.loc["system prompt", "n"] == 8 * 2 and m.loc["many-shot", "n"] == 2 * 2
    assert (m["rollouts"] == 2).all() and (m["n_questions"] == 2).all()
    assert (m["measure"] == "likelihood judge").all()
