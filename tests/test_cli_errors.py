"""What the `spar` CLI does with an error: a user's mistake is one line (exit 2), a bug in spar its traceback (exit 1).

Also the user errors that must come before any compute: repeated instruction ids in every verb that reads
Instruction files, named by file:line.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spar.cli import main
from spar.errors import UserError
from spar.records import Instruction, Negative, RecordError, Response, read_instructions, write_jsonl

REPO = Path(__file__).resolve().parents[1]
LOOP = REPO / "tests" / "assets" / "loop.yaml"


def spar(*argv, cwd=None):
    """`spar ...` in a fresh process: what a user sees."""
    return subprocess.run([sys.executable, "-m", "spar.cli", *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=300)


def one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_bad_config_value_is_one_line_without_traceback(tmp_path):
    done = spar("run", "--config", LOOP, f"out_dir={tmp_path}", "search.branch=0")
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith("spar run: error: ") and "search.branch=0" in line and ">= 1" in line
    assert not (tmp_path / "loop" / "iter_0").exists()


def test_missing_file_is_one_line_without_traceback(tmp_path):
    done = spar("data", "stats", tmp_path / "none.jsonl")
    assert done.returncode == 2 and "none.jsonl" in one_line(done.stderr)


@pytest.mark.parametrize("make_path,kind", [
    (lambda d: d, "IsADirectoryError"),
    (lambda d: d / "file.jsonl" / "x.jsonl", "NotADirectoryError"),
])
def test_path_errors_are_user_errors(tmp_path, capsys, make_path, kind):
    (tmp_path / "file.jsonl").write_text("")
    assert main(["data", "stats", str(make_path(tmp_path))]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("spar data: error: ") and str(make_path(tmp_path)) in line


def test_permission_error_is_a_user_error(tmp_path, capsys, monkeypatch):
    import spar.commands.data

    def denied(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "out.jsonl"))

    monkeypatch.setattr(spar.commands.data, "_stats", denied)
    assert main(["data", "stats", "x.jsonl"]) == 2
    assert "Permission denied" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("error", [KeyError("kind"), ValueError("math domain error"), TypeError("unhashable type")])
def test_internal_error_shows_traceback_and_says_it_is_a_bug(tmp_path, capsys, monkeypatch, error):
    """Old code: any KeyError or ValueError, bug or not, became one line with exit status 2: the bug was hidden."""
    import spar.data.stats

    def broken(instructions):
        raise error

    monkeypatch.setattr(spar.data.stats, "stats", broken)
    path = tmp_path / "i.jsonl"
    write_jsonl(path, [Instruction("a", "p")])
    assert main(["data", "stats", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and f"{type(error).__name__}" in err and "in broken" in err
    last = err.strip().splitlines()[-1]
    assert "bug in spar" in last and "report" in last and "spar 0." in last


def test_user_error_subclasses_stay_one_line(capsys, monkeypatch):
    import spar.commands.data

    def bad(args):
        raise RecordError("x.jsonl:3: not valid JSON\n(second line of detail)")

    monkeypatch.setattr(spar.commands.data, "_stats", bad)
    assert main(["data", "stats", "x.jsonl"]) == 2
    assert one_line(capsys.readouterr().err) == "spar data: error: x.jsonl:3: not valid JSON (second line of detail)"


# ---- repeated instruction ids: refused with file:line in every verb that keys records by them -------------


def instructions_with_a_repeat(tmp_path) -> Path:
    path = tmp_path / "inst.jsonl"
    rows = [{"id": "a", "prompt": "p"}, {"id": "b", "prompt": "q"}, {"id": "a", "prompt": "other"}]
    path.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n" + json.dumps(rows[2]) + "\n")
    return path  # the repeat is on line 4 (line 2 is blank)


def test_read_instructions_names_the_repeat(tmp_path):
    """Old code: `spar judge` and `spar search` built {id: instruction}, so the last one silently won."""
    path = instructions_with_a_repeat(tmp_path)
    with pytest.raises(RecordError, match="inst.jsonl:4: id 'a' repeats line 1"):
        read_instructions(path)
    path.write_text(json.dumps({"id": "a", "prompt": "p"}) + "\n" + json.dumps({"id": "b", "prompt": "q"}) + "\n")
    assert [i.id for i in read_instructions(path)] == ["a", "b"]


def test_judge_refuses_repeated_instruction_ids(tmp_path, capsys):
    inst = instructions_with_a_repeat(tmp_path)
    resp = tmp_path / "r.jsonl"
    write_jsonl(resp, [Response("a", 0, "x")])
    out = tmp_path / "j.jsonl"
    args = ["judge", "--in", resp, "--instructions", inst, "--out", out, "--judge", "verifier"]
    assert main([str(a) for a in args]) == 2
    assert f"{inst}:4: id 'a' repeats line 1" in one_line(capsys.readouterr().err)
    assert not out.exists()


def test_search_refuses_repeated_instruction_ids(tmp_path, capsys):
    inst = instructions_with_a_repeat(tmp_path)
    neg = tmp_path / "n.jsonl"
    write_jsonl(neg, [Negative("a", "a#0", "x", "wrong", [], 0.0)])
    out = tmp_path / "t.jsonl"
    args = ["search", "--in", neg, "--instructions", inst, "--out", out, "--judge", "verifier"]
    assert main([str(a) for a in args]) == 2
    assert f"{inst}:4: id 'a' repeats line 1" in one_line(capsys.readouterr().err)
    assert not out.exists()


def test_evolve_refuses_repeated_seed_ids(tmp_path, capsys):
    inst = instructions_with_a_repeat(tmp_path)
    out = tmp_path / "e.jsonl"
    assert main(["data", "evolve", "--in", str(inst), "--out", str(out), "--model", "m", "--backend", "hf"]) == 2
    assert f"{inst}:4: id 'a' repeats line 1" in one_line(capsys.readouterr().err)
    assert not out.exists()


def test_run_refuses_repeated_ids_before_any_compute(tmp_path):
    inst = instructions_with_a_repeat(tmp_path)
    done = spar("run", "--config", LOOP, f"out_dir={tmp_path}", f"data.source={inst}")
    assert done.returncode == 2
    assert f"{inst}:4: id 'a' repeats line 1" in one_line(done.stderr)
    assert not (tmp_path / "loop" / "eval_base").exists() and not (tmp_path / "loop" / "iter_0").exists()


@pytest.mark.parametrize("row,message", [
    ({"id": 7, "prompt": "p"}, "id 7 must be a non-empty string"),
    ({"id": "a", "prompt": ["p"]}, "prompt must be a string"),
    ({"id": "a", "prompt": "p", "constraints": "punctuation:no_comma"}, "constraints must be a list"),
    ({"id": "a", "prompt": "p", "constraints": [{"kwargs": {}}]}, "constraints must be a list"),
])
def test_malformed_instruction_fields_are_named(tmp_path, row, message):
    """Old code: such a record loaded, and the loop later failed with a TypeError (now shown as a bug)."""
    path = tmp_path / "i.jsonl"
    path.write_text(json.dumps({"id": "ok", "prompt": "fine"}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(RecordError, match=f"i.jsonl:2: {message}"):
        read_instructions(path)


def test_loop_input_errors_are_user_errors(tmp_path, capsys):
    """Errors in data.source found by the loop are UserErrors (one line), not bare ValueErrors (now bugs)."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "prompt": "x", "constraints": [{"id": "no:such", "kwargs": {}}]}) + "\n")
    assert main(["run", "--config", str(LOOP), f"out_dir={tmp_path}", f"data.source={bad}"]) == 2
    assert "bad.jsonl:1" in one_line(capsys.readouterr().err)


def test_ifeval_response_file_errors_are_user_errors(tmp_path):
    from spar.data.ifeval_rows import IFEvalRow
    from spar.eval.ifeval import responses_for

    rows = [IFEvalRow(key=1, prompt="p", instruction_id_list=[], kwargs=[])]
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"prompt": "elsewhere", "response": "r"}) + "\n")
    with pytest.raises(UserError, match="not in the IFEval data"):
        responses_for(rows, str(path))
    path.write_text(json.dumps({"prompt": "p"}) + "\n")
    with pytest.raises(UserError, match="r.jsonl:1: each line needs"):
        responses_for(rows, str(path))


@pytest.mark.parametrize("flags,message", [
    (["--n", "0"], "SamplingParams.n=0: need at least 1 sample per chat"),
    (["--top-p", "0"], "SamplingParams.top_p=0.0: must be in (0, 1]"),
    (["--temperature", "-1"], "SamplingParams.temperature=-1.0: must be >= 0"),
])
def test_bad_sampling_flags_are_user_errors(tmp_path, capsys, flags, message):
    """Sampling settings come from the user: a bad one is one line, not a ValueError shown as a bug."""
    out = tmp_path / "o.jsonl"
    assert main(["generate", "--in", "builtin:demo", "--out", str(out), "--model", "tiny-random", *flags]) == 2
    assert message in one_line(capsys.readouterr().err)
    assert not out.exists()
