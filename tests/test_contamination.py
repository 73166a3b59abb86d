"""N-gram contamination: the measure, the report, the CLI, and the gates in `spar data synth` and `spar run`."""

import json
import random
from pathlib import Path

import pytest

from spar.cli import main
from spar.constraints import get
from spar.constraints.ifeval_kinds import IFEVAL_IDS
from spar.data.contamination import contamination, guard_training_data, load_prompts, words
from spar.data.synth import synthesize
from spar.errors import UserError
from spar.records import Instruction, write_jsonl

REPO = Path(__file__).resolve().parents[1]
LOOP = REPO / "tests/assets/loop.yaml"


def ifeval_wording(per_kind: int = 20) -> list[tuple[str, str]]:
    """IFEval's own constraint sentences (the describe() texts of its 25 kinds), with varied kwargs."""
    rng = random.Random(0)
    return [(f"{cid}#{k}", get(cid).describe(get(cid).sample_kwargs(rng, prompt="Write a note.")))
            for cid in IFEVAL_IDS for k in range(per_kind)]


def test_words_are_lowercased_and_stripped_of_punctuation():
    assert words("Don't STOP: 3 commas, (here)!") == ["dont", "stop", "3", "commas", "here"]


def test_share_and_longest_shared_run():
    bench = [("b1", "Write a poem about the sea. Do not use any commas in your whole reply, please."),
             ("b2", "Something else entirely, with no overlap at all here.")]
    mine = [("a", "Tell me a story. do not use ANY commas in your whole reply please and thanks"),
            ("b", "Write a poem about the sea"),  # 7 words only: below n = 8
            ("c", "Nothing shared.")]
    report = contamination(mine, bench, n=8)
    assert report.total == 3 and [h.id for h in report.hits] == ["a"] and report.share == pytest.approx(1 / 3)
    hit = report.hits[0]
    assert hit.run == "do not use any commas in your whole reply please" and hit.length == 10
    assert hit.benchmark_id == "b1"
    assert "a: 10 words shared with b1" in report.summary()
    assert contamination(mine, bench, n=6).share == pytest.approx(2 / 3)


def test_loads_ifeval_rows_and_instruction_records_and_names_bad_lines(tmp_path, ifeval_sample):
    rows = load_prompts(ifeval_sample, "--against")
    assert len(rows) == 14 and rows[0][0] == "1000"
    records = tmp_path / "i.jsonl"
    write_jsonl(records, [Instruction("x1", "Write a haiku.")])
    assert load_prompts(records, "--in") == [("x1", "Write a haiku.")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "ok"}\n\n{"id": "b", "text": "no prompt"}\n')
    with pytest.raises(UserError, match=r"bad.jsonl:3: expected a JSON object with a string `prompt`"):
        load_prompts(bad, "--in")
    with pytest.raises(UserError, match="--against .*none.jsonl: file not found"):
        load_prompts(tmp_path / "none.jsonl", "--against")


def test_shipped_synthesis_is_under_two_percent(ifeval_sample):
    """The old synthesis reused IFEval's constraint sentences: 4.9% of 10,000 instructions shared an 8-word run with
    the 14-row IFEval sample, and far more with IFEval's full constraint wording. Its own phrasings stay under 2%
    against both (here: none at all)."""
    pairs = [(i.id, i.prompt) for i in synthesize(10000, seed=0)]
    assert contamination(pairs, load_prompts(ifeval_sample, "b"), 8).share < 0.02
    report = contamination(pairs, ifeval_wording(), 8)
    assert report.share < 0.02, report.summary()


def test_benchmark_wording_is_caught():
    """An instruction that carries an IFEval constraint sentence is flagged, with the copied run shown."""
    sentence = get("combination:repeat_prompt").describe({"prompt_to_repeat": "x"})
    report = contamination([("x", "Write a limerick about tea.\n" + sentence)], ifeval_wording(1), 8)
    assert report.share == 1 and report.hits[0].length >= 30 and report.hits[0].run.startswith("first repeat")


def test_cli_reports_share_and_examples(tmp_path, capsys, ifeval_sample):
    inst = tmp_path / "i.jsonl"
    sentence = get("punctuation:no_comma").describe({})
    write_jsonl(inst, [Instruction("copy", "Write a note. " + sentence), Instruction("own", "Write a note.")])
    bench = tmp_path / "b.jsonl"
    bench.write_text(json.dumps({"key": 7, "prompt": "Tell a joke. " + sentence}) + "\n")
    assert main(["data", "contamination", "--in", str(inst), "--against", str(bench)]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 instructions (50.00%)" in out and "copy: 11 words shared with 7" in out
    assert main(["data", "contamination", "--in", str(inst), "--against", str(bench), "--json", "--n", "12"]) == 0
    assert json.loads(capsys.readouterr().out)["contaminated"] == 0
    assert main(["data", "contamination", "--in", str(inst), "--against", str(bench), "--max-share", "0.1"]) == 2
    assert "50.00%" in capsys.readouterr().err
    assert main(["data", "contamination", "--in", str(inst), "--against", str(bench), "--n", "0"]) == 2


def test_synth_check_leaks_refuses_contaminated_data_before_writing(tmp_path, capsys):
    """A benchmark that holds the synthesis's own sentences is refused above --max-contamination, naming the share,
    the limit, an example and the fix; nothing is written."""
    made = synthesize(300, seed=0)
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({"key": i.id, "prompt": i.prompt}) + "\n" for i in made[:60]))
    out = tmp_path / "out.jsonl"
    assert main(["data", "synth", "--n", "300", "--out", str(out), "--check-leaks", str(bench)]) == 2
    err = capsys.readouterr().err
    assert "share a run of 8 words" in err and "above the limit of 2.00%" in err and "e.g. s0-" in err
    assert "phrasings" in err and not out.exists()
    # a limit of 100% lets the n-gram check pass; the near-duplicate (Jaccard) check still refuses copies
    assert main(["data", "synth", "--n", "300", "--out", str(out), "--check-leaks", str(bench),
                 "--max-contamination", "1"]) == 2
    assert "nearly duplicate" in capsys.readouterr().err and not out.exists()


def test_outputs_never_overwrite_inputs(tmp_path, capsys, ifeval_sample):
    bench = tmp_path / "bench.jsonl"
    bench.write_bytes(Path(ifeval_sample).read_bytes())
    before = bench.read_bytes()
    assert main(["data", "synth", "--n", "10", "--out", str(bench), "--check-leaks", str(bench)]) == 2
    assert "is also the --check-leaks file" in capsys.readouterr().err and bench.read_bytes() == before
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"id": "a", "prompt": "Write."}) + "\n")
    seed_bytes = seeds.read_bytes()
    assert main(["data", "evolve", "--in", str(seeds), "--out", str(seeds), "--backend", "hf",
                 "--model", "tiny-random"]) == 2
    assert "is also the --in file" in capsys.readouterr().err and seeds.read_bytes() == seed_bytes


def test_guard_names_the_setting_share_and_threshold(tmp_path):
    made = [Instruction(f"t{i}", p) for i, p in enumerate(["Write a poem about rain and say nothing else at all.",
                                                           "Plan a trip to the coast for two days."])]
    bench = tmp_path / "eval.jsonl"
    bench.write_text(json.dumps({"key": 1, "prompt": "Now write a poem about rain and say nothing else at all."})
                     + "\n")
    with pytest.raises(UserError) as e:
        guard_training_data(made, {"data.leak_check": None, "eval.ifeval_data": str(bench)}, 8, 0.02)
    msg = str(e.value)
    assert "50.00% of the training instructions (checked against eval.ifeval_data)" in msg
    assert "above the limit of 2.00%" in msg and "t0 shares 11 words with 1" in msg and "data.max_contamination" in msg
    guard_training_data(made[1:], {"eval.ifeval_data": str(bench)}, 8, 0.02)  # clean data passes


def test_run_refuses_training_data_that_copies_the_eval_data(tmp_path, capsys):
    """`spar run --eval-data` used to check nothing against the evaluation prompts; now the copy is refused before
    instructions.jsonl or any iteration is written."""
    source = REPO / "tests/assets/quote_instructions.jsonl"
    first = json.loads(source.read_text().splitlines()[0])
    evald = tmp_path / "ifeval.jsonl"
    evald.write_text(json.dumps({"key": 5, "prompt": "Please: " + first["prompt"] + " Thank you very much for it.",
                                 "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}) + "\n")
    argv = ["run", "--config", str(LOOP), f"out_dir={tmp_path}", f"data.source={source}", "--eval-data", str(evald)]
    if len(words(first["prompt"])) < 8:
        pytest.skip("the asset's first prompt is too short for an 8-word run")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "eval.ifeval_data" in err and "above the limit of 2.00%" in err
    assert not (tmp_path / "loop" / "instructions.jsonl").exists() and not (tmp_path / "loop" / "iter_0").exists()


def test_contamination_settings_are_validated():
    from spar.config import load_config

    with pytest.raises(UserError, match=r"data.max_contamination=2.*in \[0, 1\]"):
        load_config(LOOP, ["data.max_contamination=2"])
    with pytest.raises(UserError, match="data.contamination_n=0"):
        load_config(LOOP, ["data.contamination_n=0"])
