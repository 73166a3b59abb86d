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


def test_search_flags_default_to_the_config():
    """Old code kept its own defaults (judge hybrid, no top_p flag) beside the config's."""
    import argparse

    from spar.commands import search
    from spar.config import JudgeConfig, ModelConfig, RunConfig, SearchConfig

    parser = argparse.ArgumentParser()
    search.add_arguments(parser)
    files = ["--in", "n.jsonl", "--instructions", "i.jsonl", "--out", "t.jsonl"]
    assert search.settings(parser.parse_args(files)) == (SearchConfig(), JudgeConfig(), ModelConfig())
    assert RunConfig().search == SearchConfig()
    args = parser.parse_args(files + ["--strategy", "dfs", "--gate", "1", "--top-p", "0.9", "--prefill", "--n", "3",
                                      "--judge-temperature", "0.2", "--temperature", "0.5", "--max-new-tokens", "64"])
    s, j, _ = search.settings(args)
    assert (s.strategy, s.gate, s.top_p, s.prefill, s.temperature, s.max_new_tokens) == ("dfs", 1.0, 0.9, True, 0.5, 64)
    assert (j.n, j.temperature, j.max_new_tokens) == (3, 0.2, JudgeConfig().max_new_tokens)


def test_bad_search_flags_name_the_flag(tmp_path, capsys):
    inst, neg = tmp_path / "i.jsonl", tmp_path / "n.jsonl"
    write_jsonl(inst, [Instruction("a", "p")])
    write_jsonl(neg, [Negative("a", "a#0", "x", "c")])
    base = ["search", "--in", str(neg), "--instructions", str(inst), "--out", str(tmp_path / "t.jsonl")]
    for flag, message in {("--gate", "1.5"): "command line '--gate 1.5': search.gate=1.5: must be in [0, 1]",
                          ("--branch", "0"): "command line '--branch 0': search.branch=0: must be >= 1",
                          ("--max-depth", "2.5"): "command line '--max-depth 2.5': search.max_depth=2.5 should be an "
                                                  "integer",
                          ("--strategy", "mcts"): "search.strategy='mcts': choose bfs or dfs"}.items():
        assert main([*base, *flag]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "t.jsonl").exists()
