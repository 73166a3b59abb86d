from spar.cli import main
from spar.records import Instruction, Negative, Tree, read_jsonl, write_jsonl


def test_search_cli_resumes_and_names_bad_ids(tmp_path, capsys):
    inst = tmp_path / "i.jsonl"
    write_jsonl(inst, [Instruction("a", "No commas.", [{"id": "punctuation:no_comma", "kwargs": {}}]),
                       Instruction("b", "Quote it.", [{"id": "startend:quotation", "kwargs": {}}])])
    neg = tmp_path / "n.jsonl"
    write_jsonl(neg, [Negative("a", "a#0", "x, y", "has a comma"), Negative("b", "b#0", "plain", "no quotes")])
    out = tmp_path / "t.jsonl"
    args = ["search", "--in", str(neg), "--instructions", str(inst), "--out", str(out), "--model", "tiny-random",
            "--judge", "verifier", "--max-depth", "1", "--max-new-tokens", "6"]
    assert main(args) == 0
    trees = read_jsonl(out, Tree)
    assert [t.instruction_id for t in trees] == ["a", "b"] and all(t.calls["refine"] == 3 for t in trees)
    assert main(args) == 0 and "nothing to do" in capsys.readouterr().out
    write_jsonl(neg, [Negative("zz", "zz#0", "x", "c")])
    assert main(args) == 2 and "n.jsonl:1: instruction id 'zz'" in capsys.readouterr().err
