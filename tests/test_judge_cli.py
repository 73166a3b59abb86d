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
    assert main(["judge", "--in", str(resp), "--instructions", str(inst), "--out", str(tmp_path / "j.jsonl"),
                 "--judge", "verifier"]) == 2
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


# ---- the verbs' flags are the config's settings: same names, defaults and checks -----------------------------

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import importlib  # noqa: E402

from spar.config import JudgeConfig, ModelConfig, RunConfig  # noqa: E402

FILES = ["--in", "r.jsonl", "--instructions", "i.jsonl", "--out", "j.jsonl"]


def parse(verb, *argv):
    parser = argparse.ArgumentParser(prog=f"spar {verb}")
    module = importlib.import_module(f"spar.commands.{verb}")
    module.add_arguments(parser)
    return module, parser, parser.parse_args(list(argv))


def test_judge_flags_default_to_the_config():
    """Old code: `spar judge --judge` defaulted to hybrid while the config's judge.kind is llm."""
    module, _, args = parse("judge", *FILES)
    judge, model, seed = module.settings(args)
    assert judge == JudgeConfig() == RunConfig().judge and judge.kind == "llm"
    assert model == ModelConfig() == RunConfig().refiner and seed == RunConfig().seed


def test_generate_model_and_judge_flags_default_to_the_config():
    module, _, args = parse("generate", "--in", "builtin:demo", "--out", "o.jsonl")
    assert module.settings(args) == (ModelConfig(), JudgeConfig())
    _, _, args = parse("generate", "--in", "builtin:demo", "--out", "o.jsonl", "--judge", "hybrid",
                       "--judge-n", "3", "--batch-size", "4", "--model", "tiny-random")
    model, judge = module.settings(args)
    assert (judge.kind, judge.n, model.batch_size, model.name) == ("hybrid", 3, 4, "tiny-random")


def test_every_judge_setting_is_a_flag_with_the_configs_help():
    _, parser, _ = parse("judge", *FILES)
    helps = {a.dest: a.help for a in parser._actions}
    for f in dataclasses.fields(JudgeConfig):
        assert f"judge.{f.name}" in helps, f"judge.{f.name} has no flag"
        assert helps[f"judge.{f.name}"].startswith(f.metadata["help"].replace("%", "%%"))
    module, _, args = parse("judge", *FILES, "--judge", "hybrid", "--n", "3", "--temperature", "0", "--always-llm",
                            "--max-new-tokens", "64", "--resample", "0", "--backend", "openai", "--model", "2024")
    judge, model, _ = module.settings(args)
    assert judge == dataclasses.replace(JudgeConfig(), kind="hybrid", n=3, temperature=0.0, always_llm=True,
                                        max_new_tokens=64, resample=0)
    assert (model.backend, model.name) == ("openai", "2024")  # a text setting keeps the text


def test_bad_flag_values_are_fixit_errors_naming_the_flag(tmp_path, capsys):
    """Old code passed --n 0 to the judge, which failed naming `SamplingParams.n`, a name no user typed."""
    inst, resp = tmp_path / "i.jsonl", tmp_path / "r.jsonl"
    write_jsonl(inst, [Instruction("a", "p")])
    write_jsonl(resp, [Response("a", 0, "t")])
    files = ["judge", "--in", str(resp), "--instructions", str(inst), "--out", str(tmp_path / "j.jsonl")]
    cases = {
        ("--n", "0"): "command line '--n 0': judge.n=0: must be >= 1 (paper: 5)",
        ("--temperature", "-1"): "command line '--temperature -1': judge.temperature=-1.0: must be >= 0",
        ("--temperature", "warm"): "command line '--temperature warm': judge.temperature='warm' should be a number",
        ("--judge", "majority"): "command line '--judge majority': judge.kind='majority': choose llm, verifier or "
                                 "hybrid",
        ("--batch-size", "0"): "command line '--batch-size 0': refiner.batch_size=0: must be >= 1",
    }
    for flag, message in cases.items():
        assert main([*files, *flag]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "j.jsonl").exists()
