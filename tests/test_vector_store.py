"""The one vector store: lookup rules, trait identity, fit checks, caching and the layer rule."""

from __future__ import annotations

import os
import pickle

import pytest
from test_vectors import make_vector

from persona.errors import PersonaError
from persona.model.loading import resolve
from persona.model.vector_store import (
    ModelShape,
    VectorStore,
    find,
    read,
    resolve_layer,
    source_shape,
    trait_vector,
)
from persona.model.vectors import save_vector, vector_path

SHAPE = ModelShape("org/model", num_layers=4, hidden_size=8, fingerprint="abc")


def test_lookup_by_model_folder_then_flat_then_file(tmp_path):
    nested = save_vector(make_vector(), vector_path(tmp_path, "org/model", "evil"))
    assert find("evil", tmp_path, "org/model") == nested.resolve()
    flat = save_vector(make_vector(trait="humorous"), tmp_path / "humorous.safetensors")
    assert find("humorous", tmp_path, "org/model") == flat.resolve()
    assert find("anything", nested, "org/model") == nested.resolve()  # the folder is one file
    assert find(str(flat), None, "org/model") == flat.resolve()  # a path needs no folder
    with pytest.raises(PersonaError, match="persona extract --trait evil --model other"):
        find("evil", tmp_path, "other")
    with pytest.raises(PersonaError, match="no persona vector file"):
        find(str(tmp_path / "nope.safetensors"), tmp_path, "org/model")
    with pytest.raises(PersonaError, match="no persona vector file"):
        find(str(tmp_path / "evil.pt"), tmp_path, "org/model")  # a path, never a trait name
    with pytest.raises(PersonaError, match="no vectors folder is set: pass -M vectors"):
        find("evil", None, "org/model")


def test_a_vector_of_another_trait_is_refused(tmp_path):
    evil = save_vector(make_vector(), tmp_path / "evil.safetensors")
    with pytest.raises(PersonaError, match="is the 'evil' vector, not 'humorous'"):
        VectorStore(evil).get("humorous", "org/model", shape=SHAPE)
    store = VectorStore(tmp_path)
    assert store.get("evil", "org/model", shape=SHAPE).trait == "evil"
    assert store.get(str(evil), "org/model").path == evil.resolve()  # a file: any trait
    with pytest.raises(PersonaError, match="not 'humorous'"):
        store.get(str(evil), "org/model", trait="humorous")


def test_fit_is_checked_against_the_model(tmp_path):
    save_vector(make_vector(), vector_path(tmp_path, "org/model", "evil"))
    store = VectorStore(tmp_path)
    with pytest.raises(PersonaError, match="has 6 layers, d=8: extract a vector"):
        store.get("evil", "org/model", shape=ModelShape("org/model", 6, 8))
    with pytest.raises(PersonaError, match="fingerprint"):
        store.get("evil", "org/model", shape=ModelShape("org/model", 4, 8, "zzz"))
    assert store.get("evil", "org/model", shape=ModelShape("org/model", 4, 8)).vector.num_layers


def test_pickles_are_never_loaded(tmp_path):
    fake = tmp_path / "evil.safetensors"
    fake.write_bytes(pickle.dumps({"response_avg": [1.0]}))
    with pytest.raises(PersonaError, match="not a readable safetensors file"):
        VectorStore(tmp_path).get("evil", "org/model")


def test_files_are_cached_by_modification_time(tmp_path):
    path = save_vector(make_vector(), tmp_path / "evil.safetensors")
    first = read(path)
    assert read(path) is first
    save_vector(make_vector().with_meta(layer=3), path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    again = read(path)
    assert again is not first and again.layer == 3


def test_layer_rule_in_one_place():
    vec = make_vector()
    assert resolve_layer(vec, 4) == 2  # the middle
    assert resolve_layer(vec, 4, hint=3) == 3  # the trait's hint
    assert resolve_layer(vec.with_meta(layer=1), 4, hint=3) == 1  # calibrated beats the hint
    assert resolve_layer(vec.with_meta(layer=1), 4, layer=4) == 4  # asked for beats all
    assert resolve_layer(None, 30, hint=20) == 20
    assert resolve_layer(None, 30, hint=99) == 15  # a hint outside the model is ignored
    for bad in (0, 5, 999):
        with pytest.raises(PersonaError, match="out of range: this model has layers 1..4"):
            resolve_layer(vec, 4, layer=bad)


def test_shape_from_config_without_weights(tiny_dir, tiny):
    shape = source_shape(resolve(str(tiny_dir)))
    assert shape is not None
    assert (shape.num_layers, shape.hidden_size) == (tiny.num_layers, tiny.hidden_size)
    assert source_shape(resolve("org/name")) is None  # a hub id: unknown until loaded


def test_trait_vector_for_loaded_weights(tiny, tmp_path):
    from test_solvers import save_random_vector

    vectors = tmp_path / "vectors"
    path = save_random_vector(vectors, tiny.model_id, "evil", 0)
    vector, layer = trait_vector(vectors, tiny, "evil", hint=1)
    assert layer == 1 and vector.trait == "evil"
    with pytest.raises(PersonaError, match="not 'humorous'"):
        trait_vector(path, tiny, "humorous")
