"""The README's commands are real: every `persona` command parses (run with --help) and every
`inspect eval` line names a registered task (`persona_evals/<task>`) or an existing task file
whose -T parameters that task accepts."""

from __future__ import annotations

import inspect
import re
import shlex
from pathlib import Path

import pytest

from persona.app.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    lines = [ln.split("#")[0].strip() for block in blocks for ln in block.splitlines()]
    return [shlex.split(ln) for ln in lines if ln]


def test_readme_starts_with_the_two_setup_commands():
    first = commands()[:2]
    assert first == [["make", "demo"], ["make", "test"]]


PERSONA = [c for c in commands() if c[0] == "persona"]
INSPECT = [c for c in commands() if c[:2] == ["inspect", "eval"]]


def test_readme_has_commands_to_check():
    assert len(PERSONA) >= 8 and len(INSPECT) >= 3


@pytest.mark.parametrize("argv", PERSONA, ids=lambda a: " ".join(a[:3]))
def test_persona_commands_parse(argv, capsys):
    from persona.app.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(argv[1:])  # the full line parses with its options
    assert getattr(args, "func", None) is not None
    words = [w for w in argv[1:3] if not w.startswith("-")]
    verb = words[:1] if argv[1] not in ("traits", "data") else words[:2]
    with pytest.raises(SystemExit) as done:
        main([*verb, "--help"])
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("argv", INSPECT, ids=lambda a: a[2])
def test_inspect_eval_lines_name_real_tasks_and_parameters(argv):
    import importlib

    import evals.tasks
    from persona.app.registry import NAMESPACE

    spec = argv[2]
    if spec.startswith(f"{NAMESPACE}/"):  # a registered task name
        name = spec.split("/", 1)[1]
        assert name in evals.tasks.__all__, f"{spec} is not a registered task"
    else:
        path = Path(spec.split("@")[0])
        assert (README.parent / path).exists(), f"{path} does not exist"
        name = path.stem
    module = importlib.import_module(f"evals.{name}")
    params = inspect.signature(getattr(module, name)).parameters
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag == "-T":
            assert value.split("=")[0] in params, f"{path.stem} has no parameter {value}"
    assert any(a.startswith("persona/") for a in argv), "the README evaluates persona/<model>"
