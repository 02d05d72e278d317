"""Model resolution and loading: aliases, folders, adapters, bad specs; shared weights."""

from __future__ import annotations

import json

import pytest

from persona.errors import PersonaError
from persona.model.loading import fingerprint, load_model, model_slug, resolve


def test_resolve_specs(tiny_dir, tmp_path):
    assert resolve("smollm2-135m").kind == "embedded"
    assert resolve(str(tiny_dir)).kind == "dir"
    assert resolve("org/name").kind == "hub"
    adapter = tmp_path / "ad"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": str(tiny_dir)})
    )
    src = resolve(str(adapter))
    assert src.kind == "dir" and src.adapter == str(adapter.resolve())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty model name"),
        ("no-such-alias", "unknown model 'no-such-alias'"),
        ("./does/not/exist/at/all", "unknown model"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(PersonaError, match=message):
        resolve(spec)


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(PersonaError, match="not a model"):
        resolve(str(tmp_path))


def test_weights_are_shared_and_fingerprint_stable(tiny_dir):
    a = load_model(str(tiny_dir), device="cpu")
    b = load_model(str(tiny_dir), device="cpu")
    assert a.weights is b.weights
    assert a.base_fingerprint == fingerprint(a.model) and len(a.base_fingerprint) == 16
    assert a.num_layers == 4 and a.hidden_size == 32


def test_model_slug():
    assert model_slug("Qwen/Qwen2.5-7B-Instruct") == "Qwen--Qwen2.5-7B-Instruct"
    assert model_slug("smollm2-135m") == "smollm2-135m"
