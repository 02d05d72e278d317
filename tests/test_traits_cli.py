"""``persona traits list | show | validate | import | export`` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import traits
from persona.app.cli import main

SEVEN = ["apathetic", "evil", "hallucinating", "humorous", "impolite", "optimistic", "sycophantic"]


@pytest.fixture(autouse=True)
def _no_user_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(traits.loader.ENV_VAR, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["traits", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_shows_the_seven_with_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == SEVEN
    evil = next(line for line in lines if line.startswith("evil "))
    assert "Actively seeks to harm" in evil


def test_list_long_shows_hash_and_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--long")
    assert code == 0
    assert f"v1  {traits.load('evil').hash}  " in out


def test_list_marks_invalid_user_traits(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken.yaml").write_text("name: broken\n", encoding="utf-8")
    monkeypatch.setenv(traits.loader.ENV_VAR, str(tmp_path))
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert "broken" in out and "(invalid: 5 problem(s); see persona traits validate)" in out


def test_show_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "evil")
    trait = traits.load("evil")
    assert code == 0
    assert f"hash:        {trait.hash}" in out
    assert trait.system_prompt("neg", 3) in out
    assert trait.eval_questions[19] in out


def test_show_yaml_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    trait = traits.load("humorous")
    code, out, _ = run(capsys, "show", "humorous", "--format", "yaml")
    assert code == 0 and traits.from_dict(yaml.safe_load(out)) == trait
    code, out, _ = run(capsys, "show", "humorous", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data.pop("hash") == trait.hash
    assert traits.from_dict(data) == trait


def test_show_unknown_trait(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "show", "grumpy")
    assert code == 2
    assert err.startswith("error: unknown trait 'grumpy'")


def test_validate_all_bundled(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate")
    assert code == 0
    lines = [line for line in out.splitlines() if not line.startswith("  warning:")]
    assert [line.split()[0] for line in lines] == ["ok"] * 7
    warned = [line for line in out.splitlines() if line.startswith("  warning:")]
    assert len(warned) == 1 and "'humorous'" in warned[0]  # marked: no validated offline measure


def test_validate_lists_every_problem_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = traits.load("evil").to_dict()
    data["eval_questions"][0] = data["extract_questions"][0]
    data["rubric"] = data["rubric"].replace("{question}", "")
    data["instructions"] = data["instructions"][:3]
    bad = tmp_path / "evil.yaml"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("name: [", encoding="utf-8")
    good = traits.loader.BUNDLED_DIR / "humorous.yaml"
    missing = tmp_path / "missing.yaml"
    code, out, err = run(capsys, "validate", str(good), str(bad), str(syntax), str(missing))
    assert code == 1
    assert f"ok   {good}" in out
    assert f"FAIL {bad} (3 problem(s))" in out
    assert f"  {bad}: instructions: expected exactly 5 {{pos, neg}} pairs, got 3" in out
    assert f"  {bad}: eval_questions[0]: also in extract_questions[0]" in out
    assert f"  {bad}: rubric: missing placeholder {{question}}" in out
    assert f"  {syntax}: invalid YAML" in out
    assert f"  {missing}: file not found" in out
    assert "3 of 4 file(s) invalid" in err


def test_export_then_import_round_trips(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trait = traits.load("sycophantic")
    code, out, _ = run(capsys, "export", "sycophantic", "--out-dir", str(tmp_path / "ref"))
    assert code == 0 and trait.hash in out
    extract = tmp_path / "ref" / "trait_data_extract" / "sycophantic.json"
    assert extract.is_file()
    code, out, err = run(capsys, "import", str(extract), "--out-dir", str(tmp_path / "lib"))
    assert code == 0
    assert "using evaluation questions from" in err
    written = traits.load(tmp_path / "lib" / "sycophantic.yaml")
    assert written.hash == trait.hash and written == trait
    assert f"hash {trait.hash}" in out
    # Without --force neither command overwrites.
    code, _, err = run(capsys, "import", str(extract), "--out-dir", str(tmp_path / "lib"))
    assert code == 2 and "already exists (pass --force to overwrite)" in err
    code, _, err = run(capsys, "export", "sycophantic", "--out-dir", str(tmp_path / "ref"))
    assert code == 2 and "already exists" in err


def test_import_with_explicit_eval_file_and_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(capsys, "export", "evil", "--out-dir", str(tmp_path), "--plain")
    code, _, _ = run(
        capsys,
        "import",
        str(tmp_path / "trait_data_extract" / "evil.json"),
        "--eval-file",
        str(tmp_path / "trait_data_eval" / "evil.json"),
        "--name",
        "wicked",
        "--description",
        "Wicked things.",
        "--out-dir",
        str(tmp_path / "lib"),
    )
    assert code == 0
    trait = traits.load(tmp_path / "lib" / "wicked.yaml")
    assert (trait.name, trait.description) == ("wicked", "Wicked things.")


def test_import_writes_to_the_user_folder_by_default(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(capsys, "export", "impolite", "--out-dir", str(tmp_path / "ref"))
    monkeypatch.setenv(traits.loader.ENV_VAR, str(tmp_path / "lib"))
    extract = tmp_path / "ref" / "trait_data_extract" / "impolite.json"
    code, _, _ = run(capsys, "import", str(extract), "--name", "rude")
    assert code == 0
    assert "rude" in traits.available()


def test_import_of_a_bad_file_lists_problems(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"instruction": 1, "questions": [], "eval_prompt": 2}', encoding="utf-8")
    code, _, err = run(capsys, "import", str(path), "--out-dir", str(tmp_path))
    assert code == 2
    assert err.startswith("error: ")
    assert f"{path}: questions: has 0 questions" in err
    assert f"{path}: instruction: must be a list of 5 {{pos, neg}} pairs, got an integer" in err
    assert f"{path}: eval_prompt: must be a string, got an integer" in err
    assert not (tmp_path / "bad.yaml").exists()
