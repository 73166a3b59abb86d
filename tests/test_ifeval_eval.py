"""`spar eval ifeval`: loading IFEval-format data, scoring, the CLI."""

import json

import pytest

from spar.cli import main
from spar.data.ifeval_rows import IFEvalRow, load_ifeval
from spar.eval.ifeval import loose_variants, score
from spar.records import RecordError


def test_loads_the_real_sample(ifeval_sample):
    rows = load_ifeval(ifeval_sample)
    assert len(rows) == 14
    assert all(len(r.instruction_id_list) == len(r.kwargs) for r in rows)
    inst = rows[0].to_instruction()
    assert inst.split == "eval" and inst.constraints[0]["id"] == rows[0].instruction_id_list[0]


def test_nulls_from_the_hub_copy_are_absent(tmp_path):
    path = tmp_path / "hub.jsonl"
    path.write_text(json.dumps({"key": 1, "prompt": "p", "instruction_id_list": ["punctuation:no_comma"],
                                "kwargs": [{"num_words": None, "relation": None}]}) + "\n")
    assert load_ifeval(path)[0].kwargs == [{}]


@pytest.mark.parametrize("line, message", [
    ({"key": 1, "prompt": "p", "instruction_id_list": ["punctuation:no_commas"], "kwargs": [{}]},
     r"x.jsonl:2: unknown constraint id 'punctuation:no_commas'"),
    ({"key": 1, "prompt": "p", "instruction_id_list": ["length_constraints:number_words"],
      "kwargs": [{"num_words": 5}]},
     r"x.jsonl:2: .*needs kwarg 'relation'"),
    ({"key": 1, "prompt": "p", "instruction_id_list": ["punctuation:no_comma"]},
     r"x.jsonl:2: IFEval row lacks \['kwargs'\]"),
])
def test_bad_rows_are_named(tmp_path, line, message):
    path = tmp_path / "x.jsonl"
    good = {"key": 0, "prompt": "q", "instruction_id_list": [], "kwargs": []}
    path.write_text(json.dumps(good) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(RecordError, match=message):
        load_ifeval(path)


def test_prompt_and_instruction_level_pooling():
    rows = [IFEvalRow(1, "a", ["punctuation:no_comma", "startend:quotation"], [{}, {}]),
            IFEvalRow(2, "b", ["punctuation:no_comma"], [{}])]
    s = score(rows, ['"a, b"', "c"])
    assert (s.prompt_strict, s.inst_strict) == (0.5, 2 / 3)
    assert s.per_instruction["punctuation:no_comma"] == {"count": 2, "strict": 0.5, "loose": 0.5}


def test_loose_removes_first_line_and_stars():
    assert len(loose_variants("x\ny\nz")) == 8
    rows = [IFEvalRow(1, "a", ["startend:quotation"], [{}])]
    s = score(rows, ['Sure:\n"quoted"'])
    assert s.prompt_strict == 0 and s.prompt_loose == 1


def test_cli_scores_responses_and_names_unknown_prompts(ifeval_sample, tmp_path, capsys):
    rows = load_ifeval(ifeval_sample)
    resp = tmp_path / "r.jsonl"
    resp.write_text("".join(json.dumps({"prompt": r.prompt, "response": "My answer is yes."}) + "\n" for r in rows))
    out = tmp_path / "out"
    assert main(["eval", "ifeval", "--data", str(ifeval_sample), "--responses", str(resp), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_prompts"] == 14 and 0 <= metrics["average"] <= 1
    assert "prompt-level strict" in (out / "table.txt").read_text()
    with open(resp, "a") as f:
        f.write(json.dumps({"prompt": "not an IFEval prompt", "response": "x"}) + "\n")
    assert main(["eval", "ifeval", "--data", str(ifeval_sample), "--responses", str(resp), "--out", str(out)]) == 2
    assert "not an IFEval prompt" in capsys.readouterr().err


def test_cli_generates_with_a_model(ifeval_sample, tmp_path):
    out = tmp_path / "gen"
    assert main(["eval", "ifeval", "--model", "tiny-random", "--data", str(ifeval_sample), "--limit", "3",
                 "--max-new-tokens", "8", "--out", str(out)]) == 0
    lines = (out / "responses.jsonl").read_text().splitlines()
    assert len(lines) == 3


@pytest.mark.slow
def test_embedded_model_ifeval_limit_20(ifeval_sample, tmp_path):
    out = tmp_path / "smol"
    assert main(["eval", "ifeval", "--model", "smollm2-135m-instruct", "--data", str(ifeval_sample), "--limit", "20",
                 "--max-new-tokens", "256", "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["n_prompts"] == 14
