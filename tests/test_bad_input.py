"""Fault injection: every verb fed malformed, mistyped, empty, huge and self-overwriting input (issue 13).

Each case runs `spar ...` through `main([...])` and asserts what a user must see: exit status 2, one line
on stderr naming where the problem is (file:line, the flag or the config key), no traceback, and every file
in the working folder - inputs and earlier outputs - byte-identical afterwards, with nothing new written.
What can be checked up front is checked before any model loads: `make_backend` and `load_model` fail the
test if called. The openai backend's faults (a reply cut short, a server that is down, a 4xx) run against
real HTTP servers on 127.0.0.1; a 20 MB prompt runs against the tiny model.
"""

from __future__ import annotations

import hashlib
import json
import resource
import socket
import threading
from pathlib import Path

import pytest
from chat_server import ChatServer, choices, send_json

from spar.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs" / "tiny.yaml")
LOOP = str(REPO / "tests" / "assets" / "loop.yaml")


def line(obj) -> str:
    return json.dumps(obj) + "\n"


INST = {"id": "a", "prompt": "Say hi.", "constraints": [{"id": "punctuation:no_comma", "kwargs": {}}]}
RESP = {"instruction_id": "a", "index": 0, "text": "hi, there"}
NEG = {"instruction_id": "a", "response_id": "a#0", "text": "hi, there"}
PAIR = {"input": "Say hi.", "output_1": "hi", "output_2": "bye", "label": 1}
IFEVAL = {"key": 1, "prompt": "Say hi without commas.", "instruction_id_list": ["punctuation:no_comma"],
          "kwargs": [{}]}
BAD_KWARGS = {"id": "b", "prompt": "Count.", "constraints": [{"id": "length_constraints:number_words",
                                                             "kwargs": {"num_words": "5"}}]}

# name -> text of the files every case finds in its working folder
FILES = {
    "inst.jsonl": line(INST),
    "resp.jsonl": line(RESP),
    "neg.jsonl": line(NEG),
    "pairs.jsonl": line(PAIR),
    "ifeval.jsonl": line(IFEVAL),
    "answers.jsonl": line({"prompt": IFEVAL["prompt"], "response": "hi"}),
    "empty.jsonl": "",
    "blank.jsonl": "\n\n  \n",
    "out_before.jsonl": line({"instruction_id": "zz", "index": 0, "text": "an earlier output"}),
    # a blank first line: errors must name the file's own line numbers
    "prompt_number.jsonl": "\n" + line({"id": "a", "prompt": 5}),
    "dup.jsonl": line(INST) + "\n" + line(INST),
    "bad_role.jsonl": line({"id": "a", "messages": [{"role": "robot", "content": "hi"}]}),
    "bad_json.jsonl": line(INST) + '{"id": "b", "prompt": \n',
    "not_object.jsonl": "[1, 2]\n",
    "unknown_constraint.jsonl": line({"id": "a", "prompt": "x", "constraints": [{"id": "no:such", "kwargs": {}}]}),
    "bad_kwargs.jsonl": "\n\n" + line(BAD_KWARGS),
    "constraints_str.jsonl": line({"id": "a", "prompt": "x", "constraints": "punctuation:no_comma"}),
    "kwargs_str.jsonl": line({"id": "a", "prompt": "x", "constraints": [{"id": "punctuation:no_comma",
                                                                         "kwargs": "none"}]}),
    "split_number.jsonl": line({"id": "a", "prompt": "x", "split": 1}),
    "resp_text_number.jsonl": line({**RESP, "text": 5}),
    "resp_index_str.jsonl": line({**RESP, "index": "zero"}),
    "resp_unknown_inst.jsonl": "\n" + line({**RESP, "instruction_id": "zz"}),
    "neg_votes_str.jsonl": line({**NEG, "votes": "yes"}),
    "neg_value_str.jsonl": line({**NEG, "value": "high"}),
    "pair_label3.jsonl": line({**PAIR, "label": 3}),
    "pair_array_bad.json": '[{"input": "x", "output_1": "a", "output_2": "b", "label": 1}, 7]',
    "ifeval_unknown.jsonl": "\n" + line({**IFEVAL, "instruction_id_list": ["bogus"]}),
    "ifeval_prompt_number.jsonl": line({**IFEVAL, "prompt": 5}),
    "answers_bad.jsonl": "\n" + line({"prompt": 5}),
    "latin1.jsonl": None,  # written as bytes below
    "bad.yaml": "name: x\nsearch: {branch: 2\n",
    "latin.yaml": None,
    "contam.jsonl": "\n" + line({"id": "a"}),
}


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A working folder holding FILES, as the current directory; building a backend or loading a model fails."""
    for name, text in FILES.items():
        if text is not None:
            (tmp_path / name).write_text(text)
    (tmp_path / "latin1.jsonl").write_bytes('{"id": "a", "prompt": "caf\xe9"}\n'.encode("latin-1"))
    (tmp_path / "latin.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (tmp_path / "adir").mkdir()
    (tmp_path / "outdir").mkdir()
    (tmp_path / "outdir" / "responses.jsonl").write_text(FILES["answers.jsonl"])
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.chdir(tmp_path)

    def no_model(*args, **kwargs):
        raise AssertionError(f"a model or backend was loaded for input that could be checked up front: {args}")

    import spar.backends
    import spar.models

    monkeypatch.setattr(spar.backends, "make_backend", no_model)
    monkeypatch.setattr(spar.models, "load_model", no_model)
    return tmp_path


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def refused(argv: list[str], root: Path, capsys) -> str:
    """Run `spar argv`: exit 2, one stderr line without a traceback, no file changed or added. The line."""
    before = snapshot(root)
    code = main(argv)
    err = capsys.readouterr().err
    # progress bars (a model loading, a stage under way in the cases that need one) are not messages
    lines = [x for x in err.splitlines() if x.strip() and "%|" not in x]
    assert code == 2, (code, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert snapshot(root) == before, "a refused command changed or wrote files"
    return lines[0]


R = ["run", "--config", TINY, "out_dir=runs"]
G = ["generate", "--model", "tiny-random", "--out", "out.jsonl"]
J = ["judge", "--out", "out.jsonl", "--judge", "verifier"]
S = ["search", "--model", "tiny-random", "--out", "out.jsonl"]

# (verb, argv, what the one line must say)
CASES = [
    # ---- generate
    ("generate", ["generate", "--model", "tiny-random", "--in", "inst.jsonl", "--out", "inst.jsonl"],
     "--out inst.jsonl: is also the --in file"),
    ("generate", [*G[:-1], "adir", "--in", "inst.jsonl"], "--out adir: is a directory"),
    ("generate", [*G, "--in", "empty.jsonl"], "empty.jsonl: no inputs"),
    ("generate", [*G, "--in", "blank.jsonl"], "blank.jsonl: no inputs"),
    ("generate", [*G, "--in", "prompt_number.jsonl"], "prompt_number.jsonl:2: id 'a' has neither"),
    ("generate", [*G, "--in", "dup.jsonl"], "dup.jsonl:3: duplicate id 'a' (first on line 1)"),
    ("generate", [*G, "--in", "bad_role.jsonl"], "bad_role.jsonl:1:"),
    ("generate", [*G, "--in", "bad_json.jsonl"], "bad_json.jsonl:2: not valid JSON"),
    ("generate", [*G, "--in", "not_object.jsonl"], "not_object.jsonl:1: each line needs an \"id\""),
    ("generate", [*G, "--in", "latin1.jsonl"], "latin1.jsonl:1:"),
    ("generate", [*G, "--in", "bad_kwargs.jsonl", "--strategy", "greedy"],
     "bad_kwargs.jsonl:3: constraints[0]: constraint 'length_constraints:number_words': num_words='5'"),
    ("generate", [*G, "--in", "unknown_constraint.jsonl"], "unknown_constraint.jsonl:1: constraints[0]: unknown"),
    ("generate", [*G, "--in", "missing.jsonl"], "missing.jsonl"),
    ("generate", [*G, "--in", "inst.jsonl", "--n", "-5"], "n=-5"),
    ("generate", [*G, "--in", "inst.jsonl", "--top-p", "7"], "top_p=7.0"),
    ("generate", [*G, "--in", "inst.jsonl", "--max-new-tokens", "0"], "max_new_tokens=0"),
    ("generate", [*G, "--in", "inst.jsonl", "--batch-size", "0"], "'--batch-size 0': actor.batch_size=0"),
    ("generate", [*G, "--in", "inst.jsonl", "--strategy", "bfs", "--budget", "0"], "'--budget 0': must be >= 1"),
    ("generate", [*G, "--in", "inst.jsonl", "--refiner", "tiny-random"], "--refiner: only used with --strategy"),
    ("generate", [*G, "--in", "inst.jsonl", "--timeout", "5"], "--timeout: an openai backend setting"),
    ("generate", [*G, "--in", "inst.jsonl", "--base-url", "http://x/v1", "--strategy", "bfs"],
     "--base-url: an openai backend setting"),
    ("generate", [*G, "--in", "inst.jsonl", "--backend", "openai", "--concurrency", "0"],
     "'--concurrency 0': must be >= 1"),
    ("generate", [*G, "--in", "inst.jsonl", "--backend", "openai", "--max-retries", "-1"],
     "'--max-retries -1': must be >= 0"),
    ("generate", [*G, "--in", "inst.jsonl", "--judge", "bogus", "--strategy", "bfs"], "judge.kind='bogus'"),
    ("generate", [*G, "--in", "builtin:nothing"], "unknown built-in input"),
    # ---- judge
    ("judge", ["judge", "--in", "resp.jsonl", "--instructions", "inst.jsonl", "--out", "resp.jsonl"],
     "--out resp.jsonl: is also the --in file"),
    ("judge", ["judge", "--in", "resp.jsonl", "--instructions", "inst.jsonl", "--out", "inst.jsonl"],
     "--out inst.jsonl: is also the --instructions file"),
    ("judge", [*J[:2], "adir", *J[3:], "--in", "resp.jsonl", "--instructions", "inst.jsonl"],
     "--out adir: is a directory"),
    ("judge", [*J, "--in", "empty.jsonl", "--instructions", "inst.jsonl"], "empty.jsonl: no Response records"),
    ("judge", [*J, "--in", "resp.jsonl", "--instructions", "blank.jsonl"], "blank.jsonl: no instructions"),
    ("judge", [*J, "--in", "resp_text_number.jsonl", "--instructions", "inst.jsonl"],
     "resp_text_number.jsonl:1: Response field 'text' should be a string"),
    ("judge", [*J, "--in", "resp_index_str.jsonl", "--instructions", "inst.jsonl"],
     "resp_index_str.jsonl:1: Response field 'index' should be an integer"),
    ("judge", [*J, "--in", "resp_unknown_inst.jsonl", "--instructions", "inst.jsonl"],
     "resp_unknown_inst.jsonl:2: instruction id 'zz' is not in inst.jsonl"),
    ("judge", [*J, "--in", "resp.jsonl", "--instructions", "constraints_str.jsonl"],
     "constraints_str.jsonl:1: constraints must be a list"),
    ("judge", [*J, "--in", "resp.jsonl", "--instructions", "kwargs_str.jsonl"], "kwargs_str.jsonl:1: constraints"),
    ("judge", [*J, "--in", "resp.jsonl", "--instructions", "prompt_number.jsonl"],
     "prompt_number.jsonl:2: prompt must be a string"),
    ("judge", [*J, "--in", "resp.jsonl", "--instructions", "split_number.jsonl"], "split_number.jsonl:1: split"),
    ("judge", [*J, "--in", "resp.jsonl", "--instructions", "unknown_constraint.jsonl"],
     "unknown_constraint.jsonl:1: constraints[0]: unknown constraint id 'no:such'"),
    ("judge", [*J, "--in", "resp.jsonl", "--instructions", "bad_kwargs.jsonl"], "bad_kwargs.jsonl:3: constraints[0]"),
    ("judge", [*J, "--in", "resp.jsonl", "--instructions", "dup.jsonl"], "dup.jsonl:3: id 'a' repeats line 1"),
    ("judge", [*J, "--in", "resp.jsonl", "--instructions", "inst.jsonl", "--chunk", "0"], "'--chunk 0'"),
    ("judge", ["judge", "--in", "resp.jsonl", "--instructions", "inst.jsonl", "--out", "o.jsonl", "--n", "0"],
     "'--n 0': judge.n=0"),
    ("judge", ["judge", "--in", "resp.jsonl", "--instructions", "inst.jsonl", "--out", "o.jsonl",
               "--resample", "-1"], "'--resample -1': judge.resample=-1"),
    ("judge", ["judge", "--in", "resp.jsonl", "--instructions", "inst.jsonl", "--out", "o.jsonl",
               "--concurrency", "4"], "--concurrency: an openai backend setting"),
    # ---- search
    ("search", ["search", "--in", "neg.jsonl", "--instructions", "inst.jsonl", "--out", "neg.jsonl"],
     "--out neg.jsonl: is also the --in file"),
    ("search", ["search", "--in", "neg.jsonl", "--instructions", "inst.jsonl", "--out", "inst.jsonl"],
     "--out inst.jsonl: is also the --instructions file"),
    ("search", ["search", "--in", "neg.jsonl", "--instructions", "inst.jsonl", "--out", "adir"], "is a directory"),
    ("search", [*S, "--in", "empty.jsonl", "--instructions", "inst.jsonl"], "empty.jsonl: no Negative records"),
    ("search", [*S, "--in", "neg_votes_str.jsonl", "--instructions", "inst.jsonl"],
     "neg_votes_str.jsonl:1: Negative field 'votes' should be a list of objects"),
    ("search", [*S, "--in", "neg_value_str.jsonl", "--instructions", "inst.jsonl"],
     "neg_value_str.jsonl:1: Negative field 'value'"),
    ("search", [*S, "--in", "neg.jsonl", "--instructions", "unknown_constraint.jsonl"],
     "unknown_constraint.jsonl:1: constraints[0]: unknown constraint id"),
    ("search", [*S, "--in", "neg.jsonl", "--instructions", "bad_kwargs.jsonl"], "bad_kwargs.jsonl:3:"),
    ("search", [*S, "--in", "neg.jsonl", "--instructions", "inst.jsonl", "--branch", "0"], "search.branch=0"),
    ("search", [*S, "--in", "neg.jsonl", "--instructions", "inst.jsonl", "--gate", "2"], "search.gate=2.0"),
    ("search", [*S, "--in", "neg.jsonl", "--instructions", "inst.jsonl", "--strategy", "astar"],
     "search.strategy='astar'"),
    # ---- eval judgment
    ("eval judgment", ["eval", "judgment", "--data", "pairs.jsonl", "--out", "pairs.jsonl"],
     "--out pairs.jsonl: is the --data file"),
    ("eval judgment", ["eval", "judgment", "--data", "pairs.jsonl", "--out", "adir"], "--out adir: is a directory"),
    ("eval judgment", ["eval", "judgment", "--data", "empty.jsonl"], "empty.jsonl: no LLMBar rows"),
    ("eval judgment", ["eval", "judgment", "--data", "pair_label3.jsonl"], "pair_label3.jsonl:1: label must be"),
    ("eval judgment", ["eval", "judgment", "--data", "pair_array_bad.json"], "pair_array_bad.json[1]"),
    ("eval judgment", ["eval", "judgment", "--data", "pairs.jsonl", "--n", "0"], "--n 0"),
    ("eval judgment", ["eval", "judgment", "--pointwise", "--data", "bad_kwargs.jsonl"], "bad_kwargs.jsonl:3:"),
    # ---- eval ifeval
    ("eval ifeval", ["eval", "ifeval", "--data", "ifeval.jsonl", "--responses", "outdir/responses.jsonl",
                     "--out", "outdir"], "--out outdir (it writes responses.jsonl there): is also the --responses"),
    ("eval ifeval", ["eval", "ifeval", "--data", "ifeval.jsonl", "--out", "afile"], "--out afile: is a file"),
    ("eval ifeval", ["eval", "ifeval", "--data", "empty.jsonl", "--out", "e"], "empty.jsonl: no IFEval rows"),
    ("eval ifeval", ["eval", "ifeval", "--data", "ifeval_unknown.jsonl", "--out", "e"],
     "ifeval_unknown.jsonl:2: unknown constraint id 'bogus'"),
    ("eval ifeval", ["eval", "ifeval", "--data", "ifeval_prompt_number.jsonl", "--out", "e"],
     "ifeval_prompt_number.jsonl:1: prompt must be a string"),
    ("eval ifeval", ["eval", "ifeval", "--data", "ifeval.jsonl", "--out", "e", "--limit", "-1"], "'--limit -1'"),
    ("eval ifeval", ["eval", "ifeval", "--data", "ifeval.jsonl", "--out", "e", "--batch-size", "0"],
     "'--batch-size 0'"),
    ("eval ifeval", ["eval", "ifeval", "--data", "ifeval.jsonl", "--out", "e", "--max-new-tokens", "0"],
     "'--max-new-tokens 0'"),
    ("eval ifeval", ["eval", "ifeval", "--data", "ifeval.jsonl", "--out", "e", "--responses", "empty.jsonl"],
     "empty.jsonl: no responses"),
    ("eval ifeval", ["eval", "ifeval", "--data", "ifeval.jsonl", "--out", "e", "--responses", "answers_bad.jsonl"],
     "answers_bad.jsonl:2: each line needs"),
    # ---- data
    ("data synth", ["data", "synth", "--n", "5", "--out", "ifeval.jsonl", "--check-leaks", "ifeval.jsonl"],
     "is also the --check-leaks file"),
    ("data synth", ["data", "synth", "--n", "5", "--out", "adir"], "--out adir: is a directory"),
    ("data synth", ["data", "synth", "--n", "5", "--out", "s.jsonl", "--heldout", "2"], "--heldout 2.0"),
    ("data synth", ["data", "synth", "--n", "-5", "--out", "s.jsonl"], "--n -5"),
    ("data synth", ["data", "synth", "--n", "5", "--out", "s.jsonl", "--max-contamination", "3"],
     "--max-contamination 3.0"),
    ("data evolve", ["data", "evolve", "--in", "inst.jsonl", "--out", "inst.jsonl", "--model", "m"],
     "is also the --in file"),
    ("data evolve", ["data", "evolve", "--in", "empty.jsonl", "--out", "ev.jsonl", "--model", "m"],
     "empty.jsonl: no instructions"),
    ("data evolve", ["data", "evolve", "--in", "inst.jsonl", "--out", "ev.jsonl", "--model", "m", "--chunk", "0"],
     "'--chunk 0'"),
    ("data evolve", ["data", "evolve", "--in", "inst.jsonl", "--out", "ev.jsonl", "--model", "m", "--retries", "-1"],
     "'--retries -1'"),
    ("data evolve", ["data", "evolve", "--in", "inst.jsonl", "--out", "ev.jsonl", "--model", "m", "--backend", "hf",
                     "--base-url", "http://x/v1"], "--base-url: an openai backend setting"),
    ("data stats", ["data", "stats", "empty.jsonl"], "empty.jsonl: no instructions"),
    ("data stats", ["data", "stats", "unknown_constraint.jsonl"], "unknown_constraint.jsonl:1: constraints[0]"),
    ("data stats", ["data", "stats", "bad_kwargs.jsonl"], "bad_kwargs.jsonl:3: constraints[0]"),
    ("data stats", ["data", "stats", "adir"], "adir"),
    ("data contamination", ["data", "contamination", "--in", "empty.jsonl", "--against", "ifeval.jsonl"],
     "--in empty.jsonl: no prompts"),
    ("data contamination", ["data", "contamination", "--in", "contam.jsonl", "--against", "ifeval.jsonl"],
     "contam.jsonl:2:"),
    ("data contamination", ["data", "contamination", "--in", "inst.jsonl", "--against", "ifeval.jsonl",
                            "--examples", "-1"], "--examples -1"),
    # ---- run: config files, overrides, data; nothing written (no config.yaml) and no model loaded
    ("run", ["run", "--config", "bad.yaml"], "bad.yaml:3: not valid YAML"),
    ("run", ["run", "--config", "latin.yaml"], "latin.yaml: not UTF-8 text"),
    ("run", ["run", "--config", "missing.yaml"], "missing.yaml"),
    ("run", [*R, "search={branch: 2"], "command line 'search={branch: 2': not valid YAML"),
    ("run", [*R, "actor.options={bogus: 1}"], "actor.options: the hf backend has no option 'bogus'; it takes"),
    ("run", [*R, "refiner.options={batch_sise: 4}"], "did you mean batch_size?"),
    ("run", [*R, "name=../../escape"], "name='../../escape': must be a plain folder name"),
    ("run", [*R, "name=.hidden"], "must be a plain folder name"),
    ("run", [*R, "data.n=-5"], "command line 'data.n=-5': data.n=-5"),
    ("run", [*R, "data.heldout=2"], "data.heldout=2"),
    ("run", [*R, "train.dpo.lr=-1"], "train.dpo.lr=-1.0: must be > 0"),
    ("run", [*R, "chunk=0"], "chunk=0: must be >= 1"),
    ("run", [*R, "sample.k=0"], "sample.k=0"),
    ("run", [*R, "judge.n=0"], "judge.n=0"),
    ("run", [*R, "sample.top_p=7"], "sample.top_p=7.0"),
    ("run", [*R, "actor.batch_size=0"], "command line 'actor.batch_size=0': actor.batch_size=0"),
    ("run", [*R, "iterations=0"], "iterations=0"),
    ("run", [*R, "eval.heldout=-1"], "eval.heldout=-1"),
    ("run", [*R, "search.branch=two"], "command line 'search.branch=two': search.branch='two' should be an integer"),
    ("run", [*R, "serch.branch=2"], "did you mean search?"),
    ("run", [*R, "data.source=empty.jsonl"], "empty.jsonl: no instructions"),
    ("run", [*R, "data.source=bad_kwargs.jsonl"], "bad_kwargs.jsonl:3: constraints[0]"),
    ("run", [*R, "data.source=resp_unknown_inst.jsonl"], "resp_unknown_inst.jsonl:2:"),
    ("run", [*R, "data.source=runs/tiny/mine.jsonl"], "data.source=runs/tiny/mine.jsonl: inside the run directory"),
    ("run", [*R, "eval.ifeval_data=empty.jsonl"], "empty.jsonl: no IFEval rows"),
    ("run", [*R, "eval.ifeval_data=ifeval_unknown.jsonl"], "ifeval_unknown.jsonl:2:"),
    ("run", [*R, "data.leak_check=missing.jsonl"], "data.leak_check=missing.jsonl"),
]


@pytest.mark.parametrize("verb,argv,says", CASES, ids=[f"{c[0]}:{' '.join(c[1][1:])[:60]}" for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(work, capsys, verb, argv, says):
    """Old code: for about a third of these, a traceback, exit 0 on bad input, an overwritten input, a model
    loaded before the mistake was found, or the line before the bad one named."""
    if "runs/tiny/mine.jsonl" in argv[-1]:
        (work / "runs" / "tiny").mkdir(parents=True)
        (work / "runs" / "tiny" / "mine.jsonl").write_text(FILES["inst.jsonl"])
    said = refused(argv, work, capsys)
    assert said.startswith(f"spar {verb.split()[0]}: error: "), said
    assert says in said, said


def test_every_verb_is_covered():
    verbs = {c[0].split()[0] for c in CASES}
    assert verbs >= {"run", "generate", "judge", "search", "eval", "data"}
    assert len(CASES) >= 100


def test_an_earlier_output_survives_a_refused_rerun(work, capsys):
    """The output file a command appends to is left as it was when the command is refused."""
    said = refused([*G[:-1], "out_before.jsonl", "--in", "bad_kwargs.jsonl"], work, capsys)
    assert "bad_kwargs.jsonl:3" in said


# ---- a prompt longer than the model's context -------------------------------------------------


def test_a_20_mb_prompt_is_refused_before_it_is_tokenized(tmp_path, capsys, monkeypatch):
    """Old code tokenized a 20 MB line and fed it to the model: 10-15 GB, then the process died."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "huge.jsonl").write_text(line(INST) + "\n" + line({"id": "big", "prompt": "word " * 4_000_000}))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    said = refused(["generate", "--model", "tiny-random", "--in", "huge.jsonl", "--out", "o.jsonl"], tmp_path, capsys)
    assert said.startswith("spar generate: error: huge.jsonl:3: a prompt of 20,000,0") and "context" in said
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 1500, f"peak memory grew by {grown_mb:.0f} MB"


def test_a_prompt_over_the_context_names_its_line_in_judge(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inst.jsonl").write_text(line({"id": "a", "prompt": "x " * 3000}))
    (tmp_path / "resp.jsonl").write_text("\n" + line(RESP))
    said = refused(["judge", "--in", "resp.jsonl", "--instructions", "inst.jsonl", "--out", "o.jsonl",
                    "--model", "tiny-random", "--n", "1"], tmp_path, capsys)
    assert "resp.jsonl:2: a prompt of" in said and "2,048 tokens" in said


# ---- spar run on a config that trains nothing ------------------------------------------------


def test_a_run_that_trains_nothing_says_so(tmp_path, capsys):
    """Old code printed a table of zeros and unchanged scores, as if that were a result."""
    code = main(["run", "--config", LOOP, f"out_dir={tmp_path}", "iterations=1", "actor.backend=scripted",
                 "actor.name=actor", "actor.options={reply: a plain answer}", "judge.kind=llm",
                 "refiner.options={reply: 'Fine.\nVerdict: Yes'}", "eval.heldout=1"])
    assert code == 0
    err = capsys.readouterr().err
    assert "note: this run trained nothing (0 refinement pairs for DPO and 0 RFT examples over 1 iteration(s))" in err


# ---- the openai backend against servers that misbehave --------------------------------------


class FlakyServer(ChatServer):
    """A chat-completions server on 127.0.0.1; `plan` holds what each successive request gets: "short" (a body
    shorter than its Content-Length, then the connection closes), an HTTP status, or "ok"."""

    def __init__(self, plan=()):
        self.plan, self.seen, self.lock = list(plan), [], threading.Lock()
        super().__init__()

    def answer(self, handler, body):
        with self.lock:
            self.seen.append(body)
            what = self.plan.pop(0) if self.plan else "ok"
        if isinstance(what, int):
            send_json(handler, what, {"error": {"message": "model 'm' does not exist"}})
        else:
            send_json(handler, 200, {"choices": choices([f"answer {i}" for i in range(body["n"])])},
                      cut=what == "short")

    stop = ChatServer.close


@pytest.fixture
def flaky():
    servers = []

    def make(plan=()):
        servers.append(FlakyServer(plan))
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


def test_a_reply_shorter_than_its_content_length_is_retried(flaky):
    """Old code: http.client.IncompleteRead was not retried and killed the run, losing the batch's answers."""
    from spar.backends.base import SamplingParams
    from spar.backends.openai import OpenAIBackend

    server = flaky(["short", "short"])
    backend = OpenAIBackend("m", base_urls=[server.url], backoff=0, max_retries=3)
    outs = backend.generate([[{"role": "user", "content": "hi"}]], SamplingParams(n=2))
    assert [c.text for c in outs[0]] == ["answer 0", "answer 1"] and len(server.seen) == 3


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_is_down_is_one_line_naming_the_url_and_leaves_no_output(tmp_path, capsys, monkeypatch):
    """Old code: a traceback after about a minute of retries, and a 0-byte output file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inst.jsonl").write_text(line(INST))
    url = f"http://127.0.0.1:{closed_port()}/v1"
    said = refused(["generate", "--backend", "openai", "--model", "m", "--base-url", url, "--max-retries", "1",
                    "--in", "inst.jsonl", "--out", "o.jsonl"], tmp_path, capsys)
    assert f"no answer from {url}/chat/completions: request 0 failed 2 times" in said and "base URL" in said
    assert not (tmp_path / "o.jsonl").exists()


def test_a_refused_request_is_one_line_naming_the_url(tmp_path, capsys, monkeypatch, flaky):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inst.jsonl").write_text(line(INST))
    server = flaky([404])
    said = refused(["generate", "--backend", "openai", "--model", "m", "--base-url", server.url,
                    "--in", "inst.jsonl", "--out", "o.jsonl"], tmp_path, capsys)
    assert f"{server.url}/chat/completions answered HTTP 404" in said and "does not exist" in said


def test_strategy_uses_the_base_url_and_flags_reach_the_backend(tmp_path, capsys, monkeypatch, flaky):
    """Old report: `spar generate --strategy ... --base-url` ignored the URL given."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inst.jsonl").write_text(line(INST))
    server = flaky()
    captured = {}
    import spar.backends
    from spar.backends.openai import OpenAIBackend

    real = spar.backends.make_backend

    def spy(kind, model, **options):
        captured.update(options)
        return real(kind, model, **options)

    monkeypatch.setattr(spar.backends, "make_backend", spy)
    assert main(["generate", "--backend", "openai", "--model", "m", "--base-url", server.url, "--strategy", "greedy",
                 "--timeout", "9", "--concurrency", "3", "--max-retries", "2", "--api-key-env", "MY_KEY",
                 "--in", "inst.jsonl", "--out", "o.jsonl"]) == 0
    assert server.seen and captured == {"base_urls": [server.url], "timeout": 9.0, "concurrency": 3,
                                        "max_retries": 2, "api_key_env": "MY_KEY"}
    assert isinstance(real("openai", "m", **captured), OpenAIBackend)


def test_request_seeds_do_not_depend_on_batch_position(flaky):
    from spar.backends.base import SamplingParams
    from spar.backends.openai import OpenAIBackend

    server = flaky()
    backend = OpenAIBackend("m", base_urls=[server.url])
    a, b = [{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]
    backend.generate([a, b], SamplingParams(n=2, seed=5))
    backend.generate([b, a], SamplingParams(n=2, seed=5))
    seeds = {}
    for body in server.seen:
        seeds.setdefault(body["messages"][0]["content"], set()).add(body["seed"])
    assert all(len(s) == 1 for s in seeds.values()) and seeds["a"] != seeds["b"]
    assert all((next(iter(s)) - 5) % 2 == 0 for s in seeds.values())  # n apart: choice j uses seed + j
