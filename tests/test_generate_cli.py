"""`spar generate`: input validation, resume, output records."""

import json

import pytest

from spar.cli import main
from spar.records import Response, read_jsonl


def test_generate_resumes_and_skips_done(tmp_path, capsys):
    inp = tmp_path / "in.jsonl"
    inp.write_text(
        json.dumps({"id": "a", "prompt": "hello"}) + "\n"
        + json.dumps({"id": "b", "messages": [{"role": "user", "content": "hi"}]}) + "\n"
    )
    out = tmp_path / "out.jsonl"
    args = ["generate", "--model", "tiny-random", "--in", str(inp), "--out", str(out), "--max-new-tokens", "4",
            "--n", "2", "--temperature", "1"]
    assert main(args) == 0
    first = read_jsonl(out, Response)
    assert sorted((r.instruction_id, r.index) for r in first) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    with open(inp, "a") as f:
        f.write(json.dumps({"id": "c", "prompt": "more"}) + "\n")
    assert main(args) == 0
    second = read_jsonl(out, Response)
    assert second[:4] == first  # nothing rewritten
    assert [r.instruction_id for r in second[4:]] == ["c", "c"]
    assert main(args) == 0
    assert "nothing to do" in capsys.readouterr().out


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"id": "a", "prompt": "x"}', "{not json"], r"in.jsonl:2: not valid JSON"),
        (['{"id": "a", "prompt": "x"}', '{"prompt": "y"}'], r"in.jsonl:2: each line needs an \"id\""),
        (['{"id": "a", "prompt": 3}'], r"in.jsonl:1: id 'a' has neither"),
        (['{"id": "a", "prompt": "x"}', '{"id": "a", "prompt": "y"}'], r"in.jsonl:2: duplicate id 'a'"),
    ],
)
def test_bad_input_is_named_and_nothing_is_lost(tmp_path, capsys, lines, message):
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"instruction_id": "old", "index": 0, "text": "kept", "model": "m"}) + "\n")
    assert main(["generate", "--model", "tiny-random", "--in", str(inp), "--out", str(out)]) == 2
    import re

    assert re.search(message, capsys.readouterr().err)
    assert [r.text for r in read_jsonl(out, Response)] == ["kept"]


def test_builtin_demo_is_known(tmp_path, capsys):
    assert main(["generate", "--model", "tiny-random", "--in", "builtin:nope", "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "builtin:demo" in capsys.readouterr().err
