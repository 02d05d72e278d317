"""Bad input on every ``persona`` verb: exit code 2, exactly one ``error:`` line, no traceback.

The table walks the input classes of docs/bad-input.md (missing, empty, wrong type, non-finite, out
of range, wrong trait, unwritable output, hostile file) over the verbs, in process and before any
model loads; the numeric space is covered property-based. Cases that need a model use the tiny
random one (tests/conftest.py); tests/test_bad_input_model.py holds those.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic_logs import make_log, row

from persona import validate as check
from persona.app.cli import main


def run(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI in process; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_one_error(code: int, err: str, fragment: str = "", expected: int = 2) -> None:
    """Exit ``expected``, one ``error:`` line on stderr (containing ``fragment``), no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert code == expected, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment.lower() in lines[0].lower(), lines[0]


BOMB = "\n".join(
    [f'a0: &a0 ["{"x" * 8}"]']
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
)


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of bad (and a few good) input files."""
    d = tmp_path_factory.mktemp("bad-input")
    chat = {
        "messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hi"}]
    }
    (d / "good.jsonl").write_text(json.dumps(chat) + "\n")
    (d / "empty.jsonl").write_bytes(b"")
    (d / "blank.jsonl").write_text("\n\n  \n")
    (d / "notjson.jsonl").write_text("this is not json\n")
    (d / "latin1.jsonl").write_bytes(b'{"messages": "caf\xe9"}\n')
    (d / "noreply.jsonl").write_text(json.dumps({"messages": [chat["messages"][0]]}) + "\n")
    (d / "folder").mkdir()
    (d / "afile").write_text("a file, not a folder")
    (d / "latin1.toml").write_bytes(b"[tool.persona.gates]\nname = 'caf\xe9'\n")
    (d / "bomb.yaml").write_text(BOMB + "\n")
    (d / "pytag.yaml").write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    (d / "notalog.eval").write_text("not a zip")
    (d / "notalog.json").write_text('{"hello": 1}')
    pickled = d / "pickled-adapter"
    pickled.mkdir()
    (pickled / "adapter_config.json").write_text('{"base_model_name_or_path": "x"}')
    (pickled / "adapter_model.bin").write_bytes(pickle.dumps({"w": [1.0]}))
    bare = d / "bare-adapter"
    bare.mkdir()
    (bare / "adapter_config.json").write_text("{}")
    make_log(
        d / "evil-extract.eval",
        rows=[row(trait="evil", question_id="extract_0", trait_score=90.0)],
        task="extract_vector",
        metadata={"trait": "evil"},
    )
    return d


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty folder, with a private cache and no extra trait folders."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERSONA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PERSONA_TRAITS_DIR", raising=False)
    return tmp_path


PROC = "/proc/persona-out"  # not writable even for root
X = ["--trait", "evil"]
GOOD = "{d}/good.jsonl"

# (input class, argv with {d} for the bad-input folder, fragment of the one error line)
CASES: list[tuple[str, list[str], str]] = [
    # --- usage
    ("usage", ["no-such-verb"], "invalid choice"),
    ("usage", ["steer", "hello"], "required"),
    ("usage", ["screen", GOOD, "--trait", "evil"], "--out"),
    (
        "usage",
        ["data", "make", "--trait", "evil", "--level", "bogus", "--n", "3", "--out", "o"],
        "",
    ),
    # --- wrong type
    ("wrong type", ["steer", "hi", *X, "--coef", "abc"], "not a number"),
    ("wrong type", ["steer", "hi", *X, "--coef", "1", "--max-new-tokens", "2.5"], "whole"),
    ("wrong type", ["extract", *X, "--questions", "many"], "whole number"),
    ("wrong type", ["data", "make", *X, "--level", "normal", "--n", "ten", "--out", "o"], "whole"),
    ("wrong type", ["report", "logs", "--out", "r", "--n-boot", "lots"], "whole number"),
    ("wrong type", ["gate", "logs", "--confidence", "high"], "not a number"),
    ("wrong type", ["finetune", GOOD, "--out", "a", "--rank", "x"], "whole number"),
    ("wrong type", ["traits", "new", "x", "--description", "d", "--max-attempts", "y"], "whole"),
    # --- non-finite
    ("non-finite", ["steer", "hi", *X, "--coef", "nan"], "finite"),
    ("non-finite", ["steer", "hi", *X, "--coef", "inf"], "finite"),
    ("non-finite", ["steer", "hi", *X, "--coef", "1", "--temperature", "nan"], "finite"),
    ("non-finite", ["extract", *X, "--temperature", "nan"], "finite"),
    ("non-finite", ["extract", *X, "--trait-threshold", "nan"], "finite"),
    ("non-finite", ["screen", GOOD, *X, "--out", "s.csv", "--threshold", "nan"], "finite"),
    ("non-finite", ["screen", GOOD, *X, "--out", "s.csv", "--threshold=-inf"], "finite"),
    (
        "non-finite",
        ["data", "make", *X, "--level", "normal", "--n", "3", "--out", "o", "--temperature", "nan"],
        "finite",
    ),
    (
        "non-finite",
        ["data", "make", *X, "--level", "normal", "--n", "3", "--out", "o", "--top-p", "nan"],
        "finite",
    ),
    ("non-finite", ["report", "logs", "--out", "r", "--min-coherence", "nan"], "finite"),
    ("non-finite", ["gate", "logs", "--confidence", "nan"], "finite"),
    ("non-finite", ["finetune", GOOD, "--out", "a", "--lr", "nan"], "finite"),
    ("non-finite", ["finetune", GOOD, "--out", "a", "--alpha", "inf"], "finite"),
    ("non-finite", ["finetune", GOOD, "--out", "a", "--steer", "evil:nan@2"], "--steer"),
    # --- out of range
    ("out of range", ["steer", "hi", *X, "--coef", "1e308"], "out of range"),
    ("out of range", ["steer", "hi", *X, "--coef", "-5000"], "out of range"),
    ("out of range", ["steer", "hi", *X, "--coef", "1", "--temperature", "-1"], "out of range"),
    ("out of range", ["steer", "hi", *X, "--coef", "1", "--layer", "0"], "out of range"),
    ("out of range", ["steer", "hi", *X, "--coef", "1", "--max-new-tokens", "0"], "range"),
    ("out of range", ["extract", *X, "--questions", "0"], "out of range"),
    ("out of range", ["extract", *X, "--rollouts", "-1"], "out of range"),
    ("out of range", ["extract", *X, "--min-pairs", "0"], "out of range"),
    ("out of range", ["extract", *X, "--coherence-threshold", "101"], "out of range"),
    ("out of range", ["extract", *X, "--questions", "1", "--no-judge"], "--min-pairs"),
    ("out of range", ["screen", GOOD, *X, "--out", "s.csv", "--top", "-1"], "out of range"),
    ("out of range", ["screen", GOOD, *X, "--out", "s.csv", "--max-batch", "0"], "out of range"),
    ("out of range", ["screen", GOOD, *X, "--out", "s.csv", "--max-tokens", "0"], "out of range"),
    ("out of range", ["screen", GOOD, *X, "--out", "s.csv", "--layer", "-3"], "out of range"),
    ("out of range", ["data", "make", *X, "--level", "normal", "--n", "0", "--out", "o"], "range"),
    (
        "out of range",
        ["data", "make", *X, "--level", "normal", "--n", "3", "--out", "o", "--temperature", "-1"],
        "out of range",
    ),
    (
        "out of range",
        ["data", "make", *X, "--level", "normal", "--n", "3", "--out", "o", "--top-p", "5"],
        "out of range",
    ),
    (
        "out of range",
        ["data", "make", *X, "--level", "normal", "--n", "3", "--out", "o", "--top-p", "0"],
        "out of range",
    ),
    ("out of range", ["data", "mix", "--mix", f"{GOOD}:1", "--out", "m", "--n", "0"], "range"),
    ("out of range", ["report", "logs", "--out", "r", "--n-boot", "0"], "out of range"),
    ("out of range", ["report", "logs", "--out", "r", "--min-coherence", "150"], "out of range"),
    ("out of range", ["gate", "logs", "--confidence", "1.5"], "out of range"),
    ("out of range", ["gate", "logs", "--confidence", "0"], "out of range"),
    ("out of range", ["finetune", GOOD, "--out", "a", "--rank", "0"], "out of range"),
    ("out of range", ["finetune", GOOD, "--out", "a", "--lr", "-1"], "out of range"),
    ("out of range", ["finetune", GOOD, "--out", "a", "--dropout", "1"], "out of range"),
    ("out of range", ["finetune", GOOD, "--out", "a", "--epochs", "0"], "out of range"),
    ("out of range", ["finetune", GOOD, "--out", "a", "--steer", "evil:1e308@2"], "out of range"),
    ("out of range", ["finetune", GOOD, "--out", "a", "--device", "tpu"], "unknown device"),
    ("out of range", ["traits", "new", "x", "--description", "d", "--timeout", "0"], "range"),
    # --- missing input
    ("missing", ["screen", "{d}/nope.jsonl", *X, "--out", "s.csv"], "no dataset"),
    ("missing", ["finetune", "{d}/nope.jsonl", "--out", "a"], "no dataset"),
    ("missing", ["data", "mix", "--mix", "{d}/nope.jsonl:1", "--out", "m.jsonl"], "nope.jsonl"),
    ("missing", ["extract", *X, "--from-log", "{d}/nope.eval"], "not found"),
    ("missing", ["steer", "hi", *X, "--coef", "1", "--adapter", "{d}/nope"], "no adapter"),
    ("missing", ["gate", "{d}/nope.eval", "--config", "{d}/nope.toml"], "not found"),
    ("missing", ["report", "{d}/nope", "--out", "r"], "nope"),
    ("missing", ["traits", "import", "{d}/nope.json", "--out-dir", "t"], "nope.json"),
    # --- empty input
    ("empty", ["screen", "{d}/empty.jsonl", *X, "--out", "s.csv"], "no usable"),
    ("empty", ["screen", "{d}/blank.jsonl", *X, "--out", "s.csv"], "no usable"),
    ("empty", ["finetune", "{d}/empty.jsonl", "--out", "a"], "no usable"),
    ("empty", ["data", "mix", "--mix", "{d}/blank.jsonl:1", "--out", "m.jsonl"], "no usable"),
    ("empty", ["extract", *X, "--from-log", "{d}/empty.jsonl"], "empty"),
    ("empty", ["steer", "   ", *X, "--coef", "1"], "empty"),
    ("empty", ["traits", "new", "x", "--description", "  ", "--out-dir", "t"], "description"),
    # --- wrong kind of input
    ("wrong kind", ["screen", "{d}/folder", *X, "--out", "s.csv"], "folder"),
    ("wrong kind", ["screen", "{d}/notjson.jsonl", *X, "--out", "s.csv"], "not JSON"),
    ("wrong kind", ["screen", "{d}/latin1.jsonl", *X, "--out", "s.csv"], "UTF-8"),
    ("wrong kind", ["finetune", "{d}/noreply.jsonl", "--out", "a"], "assistant"),
    ("wrong kind", ["extract", *X, "--from-log", "{d}/notalog.eval"], "not an Inspect log"),
    ("wrong kind", ["extract", *X, "--from-log", "{d}/notalog.json"], "not an Inspect log"),
    ("wrong kind", ["extract", *X, "--from-log", "{d}/folder"], "folder"),
    ("wrong kind", ["steer", "hi", *X, "--coef", "1", "--adapter", "{d}/folder"], "adapter"),
    ("wrong kind", ["steer", "hi", *X, "--coef", "1", "--adapter", "{d}/bare-adapter"], "safet"),
    ("wrong kind", ["gate", "{d}/notalog.eval", "--config", "{d}/latin1.toml"], "UTF-8"),
    ("wrong kind", ["traits", "show", "{d}/afile"], "afile"),
    # --- wrong trait
    (
        "wrong trait",
        ["extract", "--trait", "humorous", "--from-log", "{d}/evil-extract.eval"],
        "not of 'humorous'",
    ),
    ("wrong trait", ["extract", "--trait", "nosuch", "--questions", "1"], "unknown trait"),
    ("wrong trait", ["steer", "hi", "--trait", "nosuch", "--coef", "1"], "unknown trait"),
    ("wrong trait", ["screen", GOOD, "--trait", "nosuch", "--out", "s.csv"], "unknown trait"),
    ("wrong trait", ["traits", "show", "nosuch"], "unknown trait"),
    ("wrong trait", ["demo", "--trait", "nosuch", "--out", "demo"], "unknown trait"),
    ("wrong trait", ["traits", "show", "Bad Name!"], "trait name"),
    # --- unwritable output
    ("unwritable", ["screen", GOOD, *X, "--out", "{d}/folder"], "folder"),
    ("unwritable", ["screen", GOOD, *X, "--out", "{d}/afile/s.csv"], "is a file"),
    ("unwritable", ["screen", GOOD, *X, "--out", f"{PROC}/s.csv"], "not writable"),
    ("unwritable", ["screen", GOOD, *X, "--out", "s.csv", "--plot", "{d}/folder"], "folder"),
    (
        "unwritable",
        ["screen", GOOD, *X, "--out", "s.csv", "--threshold", "1", "--write-clean", "{d}/folder"],
        "folder",
    ),
    ("unwritable", ["extract", *X, "--out", "{d}/afile"], "is a file"),
    ("unwritable", ["extract", *X, "--log-dir", "{d}/afile"], "is a file"),
    (
        "unwritable",
        ["data", "make", *X, "--level", "normal", "--n", "3", "--out", "{d}/folder"],
        "folder",
    ),
    (
        "unwritable",
        ["data", "make", *X, "--level", "normal", "--n", "3", "--out", f"{PROC}/o"],
        "not writable",
    ),
    ("unwritable", ["data", "mix", "--mix", f"{GOOD}:1", "--out", "{d}/folder"], "folder"),
    ("unwritable", ["data", "mix", "--mix", f"{GOOD}:1", "--out", "{d}/afile/m"], "is a file"),
    ("unwritable", ["report", "logs", "--out", "{d}/afile"], "is a file"),
    ("unwritable", ["report", "logs", "--out", f"{PROC}/report"], "not writable"),
    ("unwritable", ["finetune", GOOD, "--out", "{d}/afile"], "is a file"),
    ("unwritable", ["finetune", GOOD, "--out", "{d}/afile/adapter"], "is a file"),
    ("unwritable", ["gate", "logs", "--junit", "{d}/folder"], "folder"),
    ("unwritable", ["gate", "logs", "--junit", f"{PROC}/junit.xml"], "not writable"),
    ("unwritable", ["gate", "logs", "--report", "{d}/afile/r.json"], "is a file"),
    ("unwritable", ["traits", "new", "x", "--description", "d", "--out-dir", "{d}/afile"], "file"),
    ("unwritable", ["traits", "export", "evil", "--out-dir", f"{PROC}/t"], "not writable"),
    ("unwritable", ["demo", "--out", "{d}/afile"], "is a file"),
    # --- hostile files
    ("hostile", ["traits", "show", "{d}/bomb.yaml"], "bomb.yaml"),
    ("hostile", ["traits", "show", "{d}/pytag.yaml"], "pytag.yaml"),
    ("hostile", ["steer", "hi", *X, "--coef", "1", "--adapter", "{d}/pickled-adapter"], "pickled"),
    ("hostile", ["extract", *X, "--adapter", "{d}/pickled-adapter"], "never loaded"),
]


def _id(case: tuple[str, list[str], str]) -> str:
    kind, argv, _ = case
    return f"{kind}: {' '.join(a.replace('{d}/', '') for a in argv)}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_bad_input_is_one_line_and_exit_2(case, d: Path) -> None:
    _, argv, fragment = case
    code, _, err = run([a.replace("{d}", str(d)) for a in argv])
    assert_one_error(code, err, fragment)


def test_every_verb_and_input_class_is_covered() -> None:
    verbs = {argv[0] for _, argv, _ in CASES}
    assert verbs >= {"extract", "steer", "screen", "data", "report", "gate", "finetune", "traits"}
    assert {"demo"} <= verbs
    classes = {kind for kind, _, _ in CASES}
    assert classes == {
        "usage",
        "wrong type",
        "non-finite",
        "out of range",
        "missing",
        "empty",
        "wrong kind",
        "wrong trait",
        "unwritable",
        "hostile",
    }


def test_cuda_without_a_gpu_is_one_line(d: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = run(["finetune", f"{d}/good.jsonl", "--out", "a", "--device", "cuda"])
    assert_one_error(code, err, "no CUDA GPU")


def test_a_traits_dir_that_does_not_exist_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONA_TRAITS_DIR", "/nonexistent/traits")
    for argv in (["traits", "list"], ["traits", "show", "evil"]):
        code, _, err = run(argv)
        assert_one_error(code, err, "/nonexistent/traits")


def test_new_traits_never_go_into_the_installed_package(d: Path, elsewhere: Path) -> None:
    import traits

    code, out, err = run(["traits", "export", "evil", "--out-dir", "ref"])
    assert code == 0, err
    extract = elsewhere / "ref" / "trait_data_extract" / "evil.json"
    code, out, err = run(["traits", "import", str(extract), "--name", "mine"])
    assert code == 0, err
    assert (elsewhere / "traits" / "mine.yaml").is_file()
    assert not (Path(traits.__file__).parent / "mine.yaml").exists()


def test_an_unwritable_junit_file_is_an_input_error_not_a_failed_gate(
    d: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() == 0:
        target = f"{PROC}/junit.xml"
    else:
        (d / "locked").mkdir(exist_ok=True)
        (d / "locked").chmod(0o500)
        target = f"{d}/locked/junit.xml"
    code, _, err = run(["gate", str(d / "evil-extract.eval"), "--junit", target])
    assert_one_error(code, err, "not writable", expected=2)


def test_os_errors_met_late_are_one_line(d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that turns unwritable after the checks still gives one line and exit 2."""
    import persona.app.cli.traits_cmd as traits_cmd

    def fail(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied", "/somewhere/evil.json")

    monkeypatch.setattr(traits_cmd, "cmd_export", fail)
    code, _, err = run(["traits", "export", "evil", "--out-dir", "ref"])
    assert_one_error(code, err, "/somewhere/evil.json: Permission denied")


# ---------------------------------------------------------------------------------------------
# Numbers, property-based: each checker accepts exactly its documented range


def _accepts(checker, text: str) -> bool:
    try:
        checker(text)
    except check.InputError:
        return False
    return True


FIXTURES = [HealthCheck.function_scoped_fixture]  # the folder change is the same for all examples
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**30), 10**30),
    st.sampled_from(["nan", "-inf", "1e999", "0x10", "", " ", "1,5", "abc", "1e308"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
@given(NUMBERS)
def test_numeric_checks_accept_exactly_their_range(value) -> None:
    text = str(value)
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    finite = math.isfinite(x)
    assert _accepts(check.temperature, text) == (finite and 0 <= x <= check.MAX_TEMPERATURE)
    assert _accepts(check.top_p, text) == (finite and 0 < x <= 1)
    assert _accepts(check.coefficient, text) == (finite and abs(x) <= check.MAX_ABS_COEF)
    assert _accepts(check.probability, text) == (finite and 0 < x < 1)
    assert _accepts(check.finite, text) == finite
    try:
        n = int(text)
    except ValueError:
        n = None
    assert _accepts(check.count, text) == (n is not None and n >= 1)


BAD_COEF = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).filter(
        lambda x: not math.isfinite(x) or abs(x) > check.MAX_ABS_COEF
    ),
    st.text(min_size=1, max_size=8).filter(lambda s: not _is_float(s)),
)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURES)
@given(BAD_COEF)
def test_any_bad_coefficient_is_refused_in_one_line(value) -> None:
    text = str(value)
    code, _, err = run(["steer", "hi", "--trait", "evil", f"--coef={text}"])
    assert_one_error(code, err, "--coef")


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURES)
@given(st.sampled_from(["--temperature", "--top-p"]), st.floats(allow_nan=True))
def test_sampling_numbers_outside_their_range_are_refused(flag: str, value: float) -> None:
    ok = math.isfinite(value) and (
        0 <= value <= check.MAX_TEMPERATURE if flag == "--temperature" else 0 < value <= 1
    )
    if ok:
        return
    argv = ["data", "make", "--trait", "evil", "--level", "normal", "--n", "3", "--out", "o"]
    code, _, err = run([*argv, f"{flag}={value}"])
    assert_one_error(code, err, flag)
