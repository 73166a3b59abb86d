import json

from spar.cli import main
from spar.records import Instruction, Judgment, Response, read_jsonl, write_jsonl


def test_judge_cli_verifier_resumes(tmp_path, capsys):
    inst = tmp_path / "i.jsonl"
    write_jsonl(inst, [Instruction("a", "No commas.", [{"id": "punctuation:no_comma", "kwargs": {}}])])
    resp = tmp_path / "r.jsonl"
    write_jsonl(resp, [Response("a", 0, "x, y"), Response("a", 1, "x y")])
    out = tmp_path / "j.jsonl"
    args = ["judge", "--in", str(resp), "--instructions", str(inst), "--out", str(out), "--judge", "verifier"]
    assert main(args) == 0
    js = read_jsonl(out, Judgment)
    assert [(j.response_id, j.label) for j in js] == [("a#0", "no"), ("a#1", "yes")]
    assert main(args) == 0 and "nothing to do" in capsys.readouterr().out
    assert len(read_jsonl(out, Judgment)) == 2


def test_judge_cli_names_unknown_instruction(tmp_path, capsys):
    inst = tmp_path / "i.jsonl"
    write_jsonl(inst, [Instruction("a", "p")])
    resp = tmp_path / "r.jsonl"
    resp.write_text(json.dumps({"instruction_id": "zzz", "index": 0, "text": "t"}) + "\n")
    assert main(["judge", "--in", str(resp), "--instructions", str(inst), "--out", str(tmp_path / "j.jsonl"), "--judge", "verifier"]) == 2
    assert "r.jsonl:1: instruction id 'zzz'" in capsys.readouterr().err


def test_judge_cli_llm_on_tiny_model(tmp_path):
    inst = tmp_path / "i.jsonl"
    write_jsonl(inst, [Instruction("a", "Be cheerful.", [{"id": "soft:tone", "kwargs": {"text": "cheerful"}}])])
    resp = tmp_path / "r.jsonl"
    write_jsonl(resp, [Response("a", 0, "hello")])
    out = tmp_path / "j.jsonl"
    assert main(["judge", "--in", str(resp), "--instructions", str(inst), "--out", str(out), "--judge", "hybrid",
                 "--model", "tiny-random", "--n", "2", "--max-new-tokens", "6", "--resample", "0"]) == 0
    j = read_jsonl(out, Judgment)[0]
    assert len(j.votes) == 2
