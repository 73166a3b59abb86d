"""`spar experiment scaling` (paper Fig. 5): exact response and judge counts, every cell written, bad flags."""

import json

import pytest

from spar.backends.scripted import ScriptedBackend
from spar.cli import main
from spar.config import JudgeConfig, SearchConfig
from spar.experiments.scaling import Settings, run_grid
from spar.records import Instruction, write_jsonl

NO_COMMA = Instruction("a", "List two fruits without commas.", [{"id": "punctuation:no_comma", "kwargs": {}}])
LOWER = Instruction("b", "Say hello in lowercase.", [{"id": "change_case:english_lowercase", "kwargs": {}}])


def scripted():
    """Actor: 'apple, pear' (wrong) greedy; samples cycle wrong/right. Refiner: the second of each branch fixes it.
    Judge (LLM): yes unless the judged response has a comma (as the verifier says)."""
    def respond(chat, i):
        last = chat[-1]["content"]
        if "Now rewrite" in last:
            return "drop the comma\n<refined>apple and pear</refined>" if i == 1 else "<refined>apple, pear</refined>"
        if last.startswith("Check whether the response"):
            response = last.split("[Response]\n", 1)[1].split("\n\n", 1)[0]
            return "Verdict: no" if "," in response else "Verdict: yes"
        if "lowercase" in last:
            return "hello there"
        return ("apple, pear", "kiwi, fig", "apple pear")[i % 3]
    return ScriptedBackend(respond=respond)


def grid(judge="verifier", budgets=(1, 2, 4, 8), strategies=("greedy", "best_of_n", "bfs", "dfs")):
    s = Settings(n=None, budgets=list(budgets), strategies=list(strategies), max_new_tokens=16, temperature=0.9,
                 seed=0, out="unused", data=None, ifeval_data=None, refiner=None)
    backend = scripted()
    return run_grid([NO_COMMA, LOWER], None, backend, backend, None if judge == "verifier" else backend,
                    JudgeConfig(kind=judge, n=3), SearchConfig(), s, progress=lambda m: None)


@pytest.mark.parametrize("judge", ["verifier", "llm"])
def test_budget_caps_generated_responses_and_counts_are_exact(judge):
    cells = grid(judge)
    assert [(c.strategy, c.budget) for c in cells] == [(s, b) for s in ("greedy", "best_of_n", "bfs", "dfs")
                                                      for b in (1, 2, 4, 8)]
    for c in cells:
        assert c.max_responses_per_instruction <= c.budget
        assert c.responses <= c.budget * c.instructions
    by = {(c.strategy, c.budget): c for c in cells}
    for b in (1, 2, 4, 8):
        assert by["greedy", b].responses == 2 and by["greedy", b].judge_calls == 0  # one response each, no judge
        assert by["greedy", b].prompt_level == 0.5  # 'apple, pear' fails, 'hello there' passes
        assert by["best_of_n", b].responses == 2 * b and by["best_of_n", b].judge_calls == 2 * b
    assert by["best_of_n", 1].prompt_level == 0.5 and by["best_of_n", 4].prompt_level == 1.0  # a sample w/o comma
    # the greedy answer of "a" is wrong: 1 + min(B-1, 3) responses until the second refinement of the first level
    # is judged right (all three of a level are written together); "b" is right at once: 1 response
    for strategy in ("bfs", "dfs"):
        assert [by[strategy, b].responses for b in (1, 2, 4, 8)] == [2, 3, 5, 5]
        assert [by[strategy, b].prompt_level for b in (1, 2, 4, 8)] == [0.5, 0.5, 1.0, 1.0]
        assert by[strategy, 8].max_responses_per_instruction == 4
    if judge == "llm":
        # judged: both greedy answers, then the 3 refinements; 3 votes per distinct text (two refinements repeat
        # the greedy 'apple, pear', which the judge's cache answers without a vote)
        assert by["bfs", 4].judge_calls == 2 + 3 and by["bfs", 4].judge_votes == 3 * 3
    else:
        assert all(c.judge_votes == 0 for c in cells)


def test_cli_on_tiny_model_writes_every_cell(tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, [NO_COMMA, LOWER])
    out = tmp_path / "exp"
    assert main(["experiment", "scaling", "--model", "tiny-random", "--judge", "hybrid", "--judge-n", "1",
                 "--judge-max-new-tokens", "4", "--judge-resample", "0", "--data", str(data), "--budgets", "1,2,4",
                 "--max-new-tokens", "6", "--search-max-new-tokens", "6", "--out", str(out)]) == 0
    result = json.loads((out / "scaling.json").read_text())
    cells = {(r["strategy"], r["budget"]) for r in result["rows"]}
    assert cells == {(s, b) for s in ("greedy", "best_of_n", "bfs", "dfs") for b in (1, 2, 4)}
    for r in result["rows"]:
        assert r["max_responses_per_instruction"] <= r["budget"] and r["responses"] <= 2 * r["budget"]
        assert {"prompt_level", "inst_level", "judge_calls", "judge_votes", "seconds"} <= set(r)
        if r["strategy"] == "greedy":
            assert r["responses"] == 2 and r["judge_calls"] == 0
    assert (out / "scaling.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert "best_of_n" in capsys.readouterr().out and (out / "table.txt").exists()


def test_ifeval_data_adds_strict_and_loose_and_config_file_is_read(tmp_path):
    rows = tmp_path / "ifeval.jsonl"
    rows.write_text(json.dumps({"key": 1, "prompt": "Write a word, no commas.", "instruction_id_list":
                                ["punctuation:no_comma"], "kwargs": [{}]}) + "\n")
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("model: tiny-random\njudge: verifier\nbudgets: [1, 2]\nstrategies: [greedy, bfs]\n"
                   "max_new_tokens: 4\nsearch_max_new_tokens: 4\nout: " + str(tmp_path / "from-config") + "\n")
    out = tmp_path / "exp"
    # --out on the command line wins over the file's
    assert main(["experiment", "scaling", "--config", str(cfg), "--ifeval-data", str(rows), "--out", str(out)]) == 0
    result = json.loads((out / "scaling.json").read_text())
    assert not (tmp_path / "from-config").exists()
    assert [(r["strategy"], r["budget"]) for r in result["rows"]] == [("greedy", 1), ("greedy", 2), ("bfs", 1),
                                                                      ("bfs", 2)]
    assert set(result["rows"][0]["ifeval"]) == {"prompt_strict", "inst_strict", "prompt_loose", "inst_loose"}


@pytest.mark.parametrize("flags, message", [
    (["--budgets", "0,2"], "'--budgets 0,2': each must be >= 1"),
    (["--budgets", "one"], "comma-separated integers"),
    (["--strategies", "greedy,beam"], "choose from greedy, best_of_n, bfs, dfs"),
    (["--n", "0"], "'--n 0': must be >= 1"),
    (["--max-new-tokens", "lots"], "'--max-new-tokens lots': must be an integer"),
    (["--judge-n", "0"], "judge.n"),
    (["--judge", "oracle"], "judge.kind='oracle'"),
    (["--data", "a.jsonl", "--ifeval-data", "b.jsonl"], "give one of them"),
    (["--data", "missing.jsonl"], "missing.jsonl"),
    (["--config", "missing.yaml"], "--config missing.yaml: no such file"),
])
def test_bad_flags_are_one_line_user_errors(flags, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["experiment", "scaling", "--model", "tiny-random", "--out", str(tmp_path / "o"), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("spar experiment: error:") and message in err


def test_unknown_config_key_is_a_user_error(tmp_path, capsys):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("model: tiny-random\nbudget: 4\n")
    assert main(["experiment", "scaling", "--config", str(cfg)]) == 2
    assert "'budget' is not a flag of `spar experiment scaling`" in capsys.readouterr().err


def test_default_instructions_are_synthesized_held_out(tmp_path):
    out = tmp_path / "exp"
    assert main(["experiment", "scaling", "--model", "tiny-random", "--n", "3", "--strategies", "greedy",
                 "--budgets", "1", "--max-new-tokens", "4", "--out", str(out)]) == 0
    result = json.loads((out / "scaling.json").read_text())
    assert len(result["instructions"]) == 3 and result["rows"][0]["instructions"] == 3
    from spar.data.synth import synthesize

    assert all(i.split == "heldout" for i in synthesize(3, seed=0, heldout=1.0))


def test_negated_config_key_is_refused(tmp_path, capsys):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("no_search_prefill: true\n")
    assert main(["experiment", "scaling", "--config", str(cfg)]) == 2
    assert "write 'search_prefill': false" in capsys.readouterr().err



def test_the_cpu_preset_opens_with_its_command_and_its_settings_are_valid():
    """configs/experiments/ holds experiment presets (configs/*.yaml are run presets, tested in test_config.py)."""
    import argparse
    from pathlib import Path

    from spar.experiments import scaling

    preset = Path(__file__).resolve().parents[1] / "configs" / "experiments" / "scaling-cpu.yaml"
    command = "# spar experiment scaling --config configs/experiments/scaling-cpu.yaml"
    assert preset.read_text().splitlines()[0] == command
    parser = argparse.ArgumentParser()
    scaling.add_arguments(parser)
    args = parser.parse_args(["--config", str(preset)])
    scaling.apply_config(args, args._flag_dests)  # an unknown key would be a UserError
    s, model, judge, search = scaling.settings(args)  # every value in range
    assert s.budgets == [1, 2, 4, 8] and judge.kind == "hybrid" and model.name == "smollm2-135m-instruct"
