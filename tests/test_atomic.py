"""Atomic writes: all or nothing, usual permissions, and the temporary file never left behind."""

from __future__ import annotations

import stat

import pytest

from persona.atomic import DIR_MODE, FILE_MODE, atomic_dir, atomic_path, write_bytes, write_text


def test_write_replaces_whole_file_with_usual_permissions(tmp_path):
    target = tmp_path / "sub" / "out.json"
    write_text(target, "first")
    write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.stat().st_mode) == FILE_MODE
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_interrupted_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "vector.safetensors"
    write_text(target, "old")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["vector.safetensors"]


def test_atomic_dir_swaps_in_one_step(tmp_path):
    target = tmp_path / "adapter"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    with atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert stat.S_IMODE(target.stat().st_mode) == DIR_MODE
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "c.txt").write_text("3")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]


def test_atomic_dir_gives_private_files_the_usual_permissions(tmp_path):
    target = tmp_path / "adapter"
    with atomic_dir(target) as tmp:
        weights = tmp / "adapter_model.safetensors"
        weights.write_bytes(b"x")
        weights.chmod(0o600)  # as safetensors leaves it
        (tmp / "sub").mkdir(mode=0o700)
    assert stat.S_IMODE((target / "adapter_model.safetensors").stat().st_mode) == FILE_MODE
    assert stat.S_IMODE((target / "sub").stat().st_mode) == DIR_MODE


def test_write_json_is_strict_json(tmp_path):
    import json
    import math

    from persona.atomic import write_json

    path = tmp_path / "s.json"
    write_json(path, {"a": [1.0, math.nan, (math.inf, 2)], "b": {"c": -math.inf}}, indent=2)
    assert json.loads(path.read_text()) == {"a": [1.0, None, [None, 2]], "b": {"c": None}}
