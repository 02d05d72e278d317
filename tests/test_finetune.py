"""LoRA fine-tuning on a tiny model: loss mask, training-time edits, atomic output, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from persona.app.cli import main
from persona.data import finetune as ft
from persona.data.chatdata import IGNORE, encode_chat, load_chat_jsonl, write_jsonl
from persona.data.finetune import FinetuneOptions, finetune, read_run
from persona.data.training_edits import (
    EditSpec,
    TrainingEdit,
    hook_count,
    parse_ablate,
    parse_steer,
    training_edits,
)
from persona.errors import PersonaError
from persona.model.loading import load_model
from persona.model.residual_hooks import residual_hooks
from persona.model.vectors import PersonaVector, build_meta, save_vector, vector_path

FAST = FinetuneOptions(rank=4, alpha=8, epochs=1, batch_size=2, grad_accum=1, learning_rate=5e-3)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add contention
    yield
    torch.set_num_threads(before)


def chat(q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


@pytest.fixture
def data(tmp_path):
    recs = [chat(f"What is {i}?", f"It is {i}, I think.") for i in range(4)]
    return load_chat_jsonl(write_jsonl(tmp_path / "train.jsonl", recs))


def random_vector(lm, trait="evil", hidden=None, fingerprint=None, seed=0) -> PersonaVector:
    g = torch.Generator().manual_seed(seed)
    d = hidden or lm.hidden_size
    shape = (lm.num_layers + 1, d)
    meta = build_meta(
        model_id=lm.model_id,
        fingerprint=fingerprint or lm.base_fingerprint,
        num_layers=lm.num_layers,
        hidden_size=d,
        trait=trait,
    )
    t = [torch.randn(shape, generator=g) for _ in range(3)]
    return PersonaVector(t[0], t[1], t[2], meta=meta)


@pytest.fixture
def vectors(tmp_path, tiny) -> Path:
    root = tmp_path / "vectors"
    save_vector(random_vector(tiny), vector_path(root, tiny.model_id, "evil"))
    return root


# -- loss mask -------------------------------------------------------------------------------


def test_loss_mask_covers_assistant_tokens_only(tiny):
    tok = tiny.tokenizer
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "How do I bake bread?"},
        {"role": "assistant", "content": "Mix flour and water."},
        {"role": "user", "content": "Then?"},
        {"role": "assistant", "content": "Bake it."},
    ]
    enc = encode_chat(tok, msgs)
    assert len(enc.input_ids) == len(enc.labels)
    targets = [t for t, lab in zip(enc.input_ids, enc.labels, strict=True) if lab != IGNORE]
    assert tok.decode(targets) == "Mix flour and water.<|im_end|>\nBake it.<|im_end|>\n"
    prompt_part = [t for t, lab in zip(enc.input_ids, enc.labels, strict=True) if lab == IGNORE]
    text = tok.decode(prompt_part)
    assert "Be brief." in text and "Then?" in text and "Mix flour" not in text
    # labels equal ids wherever the loss is taken
    assert all(lab in (IGNORE, t) for t, lab in zip(enc.input_ids, enc.labels, strict=True))
    # the prompt part tokenises exactly as the engine renders the prompt
    from persona.model.engine import Engine

    first = Engine(tiny).render(msgs[:2])
    assert enc.input_ids[: len(first)] == first and set(enc.labels[: len(first)]) == {IGNORE}


def test_loss_on_target_columns_equals_the_full_logits_loss(tiny):
    """Training runs the LM head only from the first target column on: same loss as over all
    positions (right-padded rows, targets starting at different columns)."""
    import torch.nn.functional as F

    tok = tiny.tokenizer
    items = [
        encode_chat(tok, [{"role": "user", "content": q}, {"role": "assistant", "content": a}])
        for q, a in [("Hi?", "Hello there, friend."), ("What is a long question here?", "Yes.")]
    ]
    batch = ft._collate(items, 0, "cpu")
    labels, first = ft._targets(batch["labels"])
    assert first == min(e.labels.index(next(x for x in e.labels if x != IGNORE)) for e in items)
    with torch.no_grad():
        full = tiny.model(input_ids=batch["input_ids"], attention_mask=batch["mask"]).logits
        kept = tiny.model(
            input_ids=batch["input_ids"],
            attention_mask=batch["mask"],
            logits_to_keep=torch.arange(first - 1, batch["labels"].shape[1] - 1),
        ).logits
    want = F.cross_entropy(
        full[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten(), ignore_index=IGNORE
    )
    got = F.cross_entropy(kept.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    none = torch.full((2, 5), IGNORE)
    assert ft._targets(none)[1] == 1 and (ft._targets(none)[0] == IGNORE).all()


def test_template_without_end_marker_gets_eos_and_truncation(tiny):
    class NoTemplate:
        chat_template = None
        eos_token_id = tiny.tokenizer.eos_token_id

        def __call__(self, text, add_special_tokens=False):
            return tiny.tokenizer(text, add_special_tokens=add_special_tokens)

    enc = encode_chat(NoTemplate(), chat("Hi?", "Hello there friend")["messages"])
    assert enc.labels[-1] == NoTemplate.eos_token_id and enc.input_ids[-1] == enc.labels[-1]
    short = encode_chat(tiny.tokenizer, chat("Hi?", "Hello there friend")["messages"], 6)
    assert short.truncated and len(short.input_ids) == 6 and short.n_target == 0


# -- training-time edits ---------------------------------------------------------------------


def _layer_out(model, ids, layer: int) -> torch.Tensor:
    """Block output at ``layer`` as the next block sees it (after any edit hooks)."""
    seen = {}
    with residual_hooks(model, [layer], lambda _, h: seen.setdefault("h", h.clone())):
        model(input_ids=ids)
    return seen["h"]


def test_steer_and_ablate_edits_then_hooks_are_gone(tiny):
    model = tiny.model
    ids = torch.tensor([tiny.tokenizer("What is the capital of France?")["input_ids"]])
    v = torch.randn(tiny.hidden_size)
    with torch.no_grad():
        before = _layer_out(model, ids, 2)
        logits = model(input_ids=ids).logits
        with training_edits(model, [TrainingEdit("steer", 2, v, 3.0)]):
            assert hook_count(model) == 1
            torch.testing.assert_close(_layer_out(model, ids, 2), before + 3.0 * v)
        with training_edits(model, [TrainingEdit("ablate", 2, v)]):
            ablated = _layer_out(model, ids, 2)
        assert ablated.matmul(v / v.norm()).abs().max() < 1e-4
        torch.testing.assert_close(
            ablated, before - (before @ (v / v.norm()))[..., None] * v / v.norm()
        )
        with pytest.raises(RuntimeError), training_edits(model, [TrainingEdit("steer", 1, v, 1)]):
            raise RuntimeError("boom")
        assert hook_count(model) == 0
        torch.testing.assert_close(model(input_ids=ids).logits, logits)


def test_training_runs_with_hooks_and_removes_them(tiny_dir, data, vectors, tmp_path, monkeypatch):
    seen = {}
    real = ft.training_edits

    def spy(model, edits):
        seen["model"], seen["edits"] = model, list(edits)
        with real(model, edits):
            seen["during"] = hook_count(model)
            yield

    from contextlib import contextmanager

    monkeypatch.setattr(ft, "training_edits", contextmanager(spy))
    edits = [parse_steer("evil:2.5@2"), parse_ablate("evil@3")]
    res = finetune(data, str(tiny_dir), tmp_path / "out", FAST, edits, vectors=vectors)
    assert seen["during"] == 2 and hook_count(seen["model"]) == 0
    assert [(e.kind, e.layer) for e in seen["edits"]] == [("steer", 2), ("ablate", 3)]
    rec = read_run(tmp_path / "out")
    assert rec["steer"][0] | {"vector": "-"} == {
        "trait": "evil",
        "layer": 2,
        "coef": 2.5,
        "vector": "-",
        "vector_sha256": rec["steer"][0]["vector_sha256"],
    }
    assert rec["ablate"][0]["layer"] == 3 and res.record["run_id"] == rec["run_id"]


def test_steering_changes_training(tiny_dir, data, vectors, tmp_path):
    plain = finetune(data, str(tiny_dir), tmp_path / "a", FAST)
    steered = finetune(
        data, str(tiny_dir), tmp_path / "b", FAST, [parse_steer("evil:20@2")], vectors=vectors
    )
    assert plain.record["loss_history"] != steered.record["loss_history"]
    assert plain.record["run_id"] != steered.record["run_id"]


# -- outputs ---------------------------------------------------------------------------------


def test_adapter_dir_and_run_record(tiny_dir, tiny, data, tmp_path):
    out = tmp_path / "run"
    res = finetune(data, str(tiny_dir), out, FAST)
    assert not res.reused
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "persona_run.json"} <= names
    rec = json.loads((out / "persona_run.json").read_text())
    for key in ("base_model", "base_fingerprint", "data_sha256", "options", "steer", "ablate"):
        assert key in rec
    assert rec["base_model"] == str(tiny_dir) and rec["base_fingerprint"] == tiny.base_fingerprint
    assert rec["data_sha256"] == data.sha256 and rec["steps"] == 2
    assert rec["options"]["rank"] == 4 and rec["final_loss"] == rec["loss_history"][-1]
    assert set(rec["lora_target_modules"]) >= {"q_proj", "v_proj", "down_proj"}
    lm = load_model(str(out), device="cpu")  # resolve() finds the base through the record
    assert lm.adapter and lm.base_fingerprint == tiny.base_fingerprint
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_output_is_atomic_when_saving_fails(tiny_dir, data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    first = finetune(data, str(tiny_dir), out, FAST)
    from peft import PeftModel

    def broken(self, path, **kw):
        (Path(path) / "adapter_model.safetensors").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(PeftModel, "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        finetune(data, str(tiny_dir), tmp_path / "new", FAST)
    assert not (tmp_path / "new").exists()
    with pytest.raises(OSError, match="disk full"):
        finetune(
            data, str(tiny_dir), out, FAST.__class__(**{**FAST.__dict__, "seed": 1}), overwrite=True
        )
    assert read_run(out)["run_id"] == first.record["run_id"]  # the old run is intact
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_existing_output_rules(tiny_dir, data, tmp_path):
    out = tmp_path / "run"
    first = finetune(data, str(tiny_dir), out, FAST)
    again = finetune(data, str(tiny_dir), out, FAST)
    assert again.reused and again.record["run_id"] == first.record["run_id"]
    other = FinetuneOptions(**{**FAST.__dict__, "learning_rate": 1e-3})
    with pytest.raises(PersonaError, match="already holds a different run"):
        finetune(data, str(tiny_dir), out, other)
    replaced = finetune(data, str(tiny_dir), out, other, overwrite=True)
    assert not replaced.reused and read_run(out)["options"]["learning_rate"] == 1e-3
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    with pytest.raises(PersonaError, match="not empty and holds no persona run"):
        finetune(data, str(tiny_dir), junk, FAST)
    (tmp_path / "file").write_text("x")
    with pytest.raises(PersonaError, match="is a file"):
        finetune(data, str(tiny_dir), tmp_path / "file", FAST)


# -- bad input -------------------------------------------------------------------------------


def test_bad_edit_specs():
    assert parse_steer("evil:-1.5@12") == EditSpec("steer", "evil", -1.5, 12)
    assert parse_steer("evil:2") == EditSpec("steer", "evil", 2.0, None)
    for bad in ("evil", "evil:x@3", "evil:2@x", ":2@3", "evil:nan@1"):
        with pytest.raises(PersonaError, match="bad --steer"):
            parse_steer(bad)
    for bad in ("evil:2@3", "@3", "evil@x"):
        with pytest.raises(PersonaError, match="bad --ablate"):
            parse_ablate(bad)


def test_steering_layer_out_of_range(tiny_dir, data, vectors, tmp_path):
    for spec in ("evil:1@0", "evil:1@5"):
        with pytest.raises(PersonaError, match="out of range"):
            finetune(
                data, str(tiny_dir), tmp_path / "o", FAST, [parse_steer(spec)], vectors=vectors
            )
    assert not (tmp_path / "o").exists()


def test_vector_of_another_model(tiny_dir, tiny, data, tmp_path):
    wrong_size = tmp_path / "v1"
    save_vector(random_vector(tiny, hidden=16), vector_path(wrong_size, tiny.model_id, "evil"))
    with pytest.raises(PersonaError, match="extract a vector for it"):
        finetune(
            data, str(tiny_dir), tmp_path / "o", FAST, [parse_steer("evil:1@2")], vectors=wrong_size
        )
    wrong_fp = tmp_path / "v2"
    save_vector(
        random_vector(tiny, fingerprint="0" * 16), vector_path(wrong_fp, tiny.model_id, "evil")
    )
    with pytest.raises(PersonaError, match="fingerprint"):
        finetune(
            data, str(tiny_dir), tmp_path / "o", FAST, [parse_ablate("evil@2")], vectors=wrong_fp
        )
    with pytest.raises(PersonaError, match="no evil vector"):
        finetune(
            data, str(tiny_dir), tmp_path / "o", FAST, [parse_ablate("evil")], vectors=tmp_path
        )


def test_bad_options():
    for kw in ({"rank": 0}, {"learning_rate": 0.0}, {"epochs": 0}, {"dropout": 1.0}):
        with pytest.raises(PersonaError):
            FinetuneOptions(**kw).check()


def test_cli_finetune_and_bad_data(tiny_dir, tmp_path, capsys):
    good = chat("Hi?", "Hello.")
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(good) + "\n{oops\n" + json.dumps({"messages": []}) + "\n")
    out = tmp_path / "adapter"
    args = ["finetune", str(path), "--model", str(tiny_dir), "--out", str(out), "--rank", "2"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "line 2: not JSON" in err and "line 3" in err and "--skip-invalid" in err
    assert main([*args, "--skip-invalid", "--grad-accum", "1"]) == 0
    captured = capsys.readouterr()
    assert "skipped 2 invalid line(s)" in captured.err and "1 steps" in captured.out
    assert read_run(out)["data"]["skipped_lines"] == [2, 3]
    assert main([*args, "--skip-invalid", "--grad-accum", "1"]) == 0
    assert "already holds this run" in capsys.readouterr().out
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["finetune", str(empty), "--model", str(tiny_dir), "--out", str(out)]) == 2
    assert "no usable chat samples" in capsys.readouterr().err


def test_training_ignores_a_callers_cpu_autocast(tiny_dir, tmp_path):
    """Under bfloat16 autocast the LoRA deltas vanished and the loss stopped depending on the
    learning rate; training now runs in the weights' dtype whatever the caller's autocast."""
    import torch

    from persona.data.chatdata import load_chat_jsonl, write_jsonl
    from persona.data.finetune import FinetuneOptions, finetune

    records = [
        {
            "messages": [
                {"role": "user", "content": f"Question {i}?"},
                {"role": "assistant", "content": f"Answer number {i} is here."},
            ]
        }
        for i in range(8)
    ]
    data = load_chat_jsonl(write_jsonl(tmp_path / "d.jsonl", records))
    options = FinetuneOptions(rank=4, alpha=8, learning_rate=1e-3, batch_size=4, grad_accum=1)

    def losses(autocast: bool) -> list[float]:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            run = finetune(data, str(tiny_dir), tmp_path / "o", options, overwrite=True)
        return run.record["loss_history"]

    assert losses(True) == losses(False)
