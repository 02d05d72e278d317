"""Chat JSONL loading: every bad-input case names its line; skipping counts; mixing by fraction."""

from __future__ import annotations

import json

import pytest

from persona.data.chatdata import load_chat_jsonl, mix, parse_mix, write_jsonl
from persona.errors import PersonaError


def chat(q: str, a: str, **extra) -> dict:
    return {
        "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    } | extra


def write_lines(path, lines: list[str]):
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD = json.dumps(chat("Hi?", "Hello."))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"text": "hello"}), "no 'messages'"),
        (json.dumps({"messages": [{"role": "user", "content": "Hi"}]}), "no assistant turn"),
        (
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": "Hi"},
                        {"role": "robot", "content": "beep"},
                    ]
                }
            ),
            "unknown role 'robot'",
        ),
        (json.dumps({"messages": []}), "non-empty list"),
        (json.dumps({"messages": [{"role": "user", "content": 3}]}), "no string 'content'"),
        (json.dumps([1, 2]), "expected a JSON object"),
        (json.dumps({"messages": [{"role": "assistant", "content": "x"}]}), "starts with"),
    ],
)
def test_each_bad_line_is_reported_with_its_number(tmp_path, line, reason):
    path = write_lines(tmp_path / "d.jsonl", [GOOD, line, GOOD])
    with pytest.raises(PersonaError, match=rf"1 invalid line\(s\): line 2: .*{reason}"):
        load_chat_jsonl(path)
    data = load_chat_jsonl(path, skip_invalid=True)
    assert len(data) == 2 and [n for n, _ in data.skipped] == [2]
    assert [s.line for s in data.samples] == [1, 3]


def test_many_bad_lines_are_listed_then_counted(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", [GOOD] + ["oops"] * 12)
    with pytest.raises(PersonaError, match=r"12 invalid line\(s\).*line 11: .*and 2 more"):
        load_chat_jsonl(path)


def test_empty_and_all_invalid_datasets_are_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(PersonaError, match="no usable chat samples"):
        load_chat_jsonl(empty)
    bad = write_lines(tmp_path / "bad.jsonl", ["x", "y"])
    with pytest.raises(PersonaError, match=r"no usable chat samples \(2 invalid"):
        load_chat_jsonl(bad, skip_invalid=True)
    with pytest.raises(PersonaError, match="no dataset"):
        load_chat_jsonl(tmp_path / "missing.jsonl")


def test_prompt_response_split_hash_and_extra_keys(tmp_path):
    rec = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "A?"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": "B?"},
            {"role": "assistant", "content": "b"},
        ],
        "id": 7,
    }
    path = write_jsonl(tmp_path / "d.jsonl", [rec])
    data = load_chat_jsonl(path)
    s = data.samples[0]
    assert s.response == "b" and [m["content"] for m in s.prompt] == ["Be brief.", "A?", "a", "B?"]
    assert s.record["id"] == 7
    assert len(data.sha256) == 64 and data.sha256 == load_chat_jsonl(path).sha256


def test_parse_mix_checks_entries():
    assert [f for _, f in parse_mix("a.jsonl:0.25,b.jsonl:0.75")] == [0.25, 0.75]
    for bad in ("a.jsonl", "a.jsonl:x", "a.jsonl:1.5", "a.jsonl:0.5,b.jsonl:0.4", ""):
        with pytest.raises(PersonaError):
            parse_mix(bad)


def test_mix_takes_fractions_and_avoids_repeating_prompts(tmp_path):
    questions = [f"Q{i}?" for i in range(10)]
    normal = write_jsonl(tmp_path / "n.jsonl", [chat(q, "kind", level="n") for q in questions])
    strong = write_jsonl(tmp_path / "s.jsonl", [chat(q, "cruel", level="s") for q in questions])
    sources = [(load_chat_jsonl(normal), 0.3), (load_chat_jsonl(strong), 0.7)]
    out = mix(sources, seed=1)
    assert len(out) == 10
    assert sum(r["level"] == "n" for r in out) == 3
    assert len({r["messages"][0]["content"] for r in out}) == 10  # each question once
    assert mix(sources, seed=1) == out  # seeded
    with pytest.raises(PersonaError, match="needs 14"):
        mix(sources, n=20)


def test_non_utf8_line_is_reported(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(GOOD.encode() + b"\n\xff\xfe{}\n")
    with pytest.raises(PersonaError, match="line 2: not UTF-8"):
        load_chat_jsonl(path)
    assert len(load_chat_jsonl(path, skip_invalid=True)) == 1
