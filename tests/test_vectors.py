"""Vector record, extraction arithmetic and safetensors I/O with every mismatch error."""

from __future__ import annotations

import json
import math

import pytest
import torch

from persona.errors import PersonaError
from persona.model.vectors import (
    KINDS,
    PersonaVector,
    build_meta,
    check_compatible,
    cosine,
    diff_of_means,
    load_vector,
    project,
    save_vector,
    vector_path,
)


def make_vector(layers=4, d=8, seed=0, **meta) -> PersonaVector:
    g = torch.Generator().manual_seed(seed)
    tensors = {k: torch.randn(layers + 1, d, generator=g) for k in KINDS}
    info = build_meta(
        model_id="m", fingerprint="abc", num_layers=layers, hidden_size=d, trait="evil"
    )
    return PersonaVector(**tensors, meta={**info, **meta})


def test_diff_of_means_is_positive_mean_minus_negative_mean():
    pos = [{k: torch.full((3, 2), v) for k in KINDS} for v in (1.0, 3.0)]
    neg = [{k: torch.full((3, 2), v) for k in KINDS} for v in (0.0, -2.0)]
    out = diff_of_means(pos, neg)
    for k in KINDS:
        assert torch.equal(out[k], torch.full((3, 2), 3.0))


def test_diff_of_means_skips_empty_replies_and_needs_both_sides():
    nan = {k: torch.full((3, 2), math.nan) for k in KINDS}
    ok = {k: torch.ones(3, 2) for k in KINDS}
    assert torch.equal(diff_of_means([ok, nan], [ok])["response_avg"], torch.zeros(3, 2))
    with pytest.raises(PersonaError, match="0 negative"):
        diff_of_means([ok], [nan])


def test_projection_uses_unit_vector_and_cosine():
    v = torch.tensor([3.0, 4.0])
    assert float(project(torch.tensor([3.0, 4.0]), v)) == pytest.approx(5.0)
    assert float(project(torch.tensor([[1.0, 0.0]]), v)[0]) == pytest.approx(0.6)
    assert cosine(v, 2 * v) == pytest.approx(1.0)
    assert cosine(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == pytest.approx(0.0)


def test_save_load_round_trip(tmp_path):
    vec = make_vector(layer=2)
    path = save_vector(vec, vector_path(tmp_path, "org/model", "evil"))
    assert path == tmp_path / "org--model" / "evil.safetensors"
    back = load_vector(path)
    for k in KINDS:
        assert torch.equal(back.tensor(k), vec.tensor(k))
    assert back.meta["trait"] == "evil" and back.layer == 2
    assert "decoder block L-1" in back.meta["layer_convention"]
    assert back.meta["filter"] == {}
    assert not list(tmp_path.rglob("*.tmp")), "atomic write leaves no temp files"


def test_metadata_is_json_in_safetensors_header(tmp_path):
    from safetensors import safe_open

    path = save_vector(make_vector(), tmp_path / "v.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert json.loads(meta["num_layers"]) == 4 and json.loads(meta["trait"]) == "evil"


def test_mismatch_errors(tmp_path):
    vec = make_vector()
    with pytest.raises(PersonaError, match="4 layers, d=8.*has 5 layers"):
        check_compatible(vec, num_layers=5, hidden_size=8)
    with pytest.raises(PersonaError, match="d=16"):
        check_compatible(vec, num_layers=4, hidden_size=16)
    with pytest.raises(PersonaError, match="fingerprint"):
        check_compatible(vec, num_layers=4, hidden_size=8, fingerprint="other")
    check_compatible(vec, num_layers=4, hidden_size=8, fingerprint="abc")


def test_non_finite_vectors_are_refused(tmp_path):
    tensors = {k: torch.zeros(3, 2) for k in KINDS}
    tensors["prompt_last"][1, 0] = math.inf
    with pytest.raises(PersonaError, match="NaN/inf"):
        PersonaVector(**tensors, meta={"trait": "evil"})
    from safetensors.torch import save_file

    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad))
    with pytest.raises(PersonaError, match="bad.safetensors.*NaN/inf"):
        load_vector(bad)


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(PersonaError, match="persona extract"):
        load_vector(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(PersonaError, match="not a readable safetensors"):
        load_vector(junk)


def test_layer_access():
    vec = make_vector()
    with pytest.raises(PersonaError, match="0..4"):
        vec.at(5)
    with pytest.raises(PersonaError, match="unknown vector kind"):
        vec.at(1, "mean")
