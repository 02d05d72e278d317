"""A flaky rerun on real runs of a tiny model: it adds eval questions, and the prompt-last
projection it cannot improve with samples is indeed the same in every sample of a question."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona.analysis.gates.config import GateConfig, GateSettings
from persona.analysis.gates.rerun import plan_rerun
from persona.app.release.runner import run_trait
from persona.app.release.session import LogSource


@pytest.fixture(scope="module")
def work(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A moved LoRA adapter of the tiny model and a random persona vector."""
    import torch
    from peft import LoraConfig, get_peft_model
    from test_solvers import save_random_vector
    from transformers import AutoModelForCausalLM

    work = tmp_path_factory.mktemp("gate-rerun")
    torch.manual_seed(0)
    net = AutoModelForCausalLM.from_pretrained(str(tiny_dir))
    cfg = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"])
    cfg.init_lora_weights = False
    get_peft_model(net, cfg).save_pretrained(str(work / "moved"))
    save_random_vector(work / "vectors", tiny_dir, "evil", 1)
    return work


def test_rerun_adds_questions_to_a_real_run(
    work: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setenv("INSPECT_CACHE_DIR", str(work / "cache"))
    monkeypatch.setenv("PERSONA_SIDECAR_DIR", str(work / "sidecars"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        source = LogSource(
            work / "logs",
            GateConfig(),
            candidate=str(work / "moved"),
            base=f"persona/{tiny_dir}",
            epochs=1,
            runner=run_trait,
            task_args={
                "questions": 2,
                "judge": False,
                "max_tokens": 2,
                "vectors": str(work / "vectors"),
            },
        )
        first = source.selection("evil")
        assert first.candidate["unit"].nunique() == 2
        settings = GateSettings(flaky="rerun", rerun_samples=2)
        # a flaky judged gate too, so the rerun also has two samples a question (two epochs)
        plan = plan_rerun(["shift", "regression"], settings, questions=2, samples=1, available=3)
        assert (plan.questions, plan.samples) == (3, 2)
        second = source.rerun("evil", plan)
    finally:
        torch.set_num_threads(threads)
    for rows in (second.candidate, second.base):
        assert rows["unit"].nunique() == 3 and rows.groupby("unit").size().tolist() == [2, 2, 2]
    for old, new in ((first.candidate, second.candidate), (first.base, second.base)):
        by_unit = new.groupby("unit")["proj_prompt_last"]
        spread = (by_unit.max() - by_unit.min()).max()
        assert spread < 1e-4  # the same every epoch, up to float noise from batching
        assert by_unit.first()[["eval_0", "eval_1"]].tolist() == pytest.approx(
            old.set_index("unit")["proj_prompt_last"][["eval_0", "eval_1"]].tolist(), abs=1e-5
        )
