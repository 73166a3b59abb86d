"""`spar generate`, `spar judge` and `spar search` killed partway, then rerun: the output of an uninterrupted run.

The verbs resume through the loop's own chunked stages (selfplay/collect.py
over rundir.run_chunked, appending to --out). Each test runs a verb once
uninterrupted, once killed after a few records were written - in the middle
of a chunk, as a SIGKILL between two lines would leave it - then reruns it,
and compares the two outputs byte for byte. The tiny random model samples
at temperature > 0, so a chunk run with other inputs beside it, or another
seed, gives other text: equal files mean the same chunks and the same seeds.
"""

import json
import shutil

import pytest

from spar.backends.base import SamplingParams
from spar.cli import main
from spar.records import Instruction, JsonlAppender, Negative, Response, read_jsonl, write_jsonl


class Killed(BaseException):
    """The process dying: nothing in spar catches it."""


def killed_after(monkeypatch, records: int) -> None:
    """Make the `records + 1`-th record written to a JSONL output kill the command."""
    write, count = JsonlAppender.write, [0]

    def dying(self, record):
        count[0] += 1
        if count[0] > records:
            raise Killed
        write(self, record)

    monkeypatch.setattr(JsonlAppender, "write", dying)


def interrupted_then_resumed(monkeypatch, args: list[str], out, records: int) -> bytes:
    """The output of the verb killed at its `records + 1`-th record, then rerun."""
    ledger = out.with_name(out.name + ".chunks")  # where the last whole chunk ended, while a run is unfinished
    with monkeypatch.context() as m:
        killed_after(m, records)
        with pytest.raises(Killed):
            main(args)
    unfinished = ledger.exists()
    assert main(args) == 0
    assert not ledger.exists()
    return out.read_bytes() if unfinished else b"no ledger after the kill"


@pytest.fixture
def inputs(tmp_path):
    prompts = ["Say hi.", "Name a color.", "Count to three.", "Greet a friend.", "Name a fruit."]
    instructions = [Instruction(f"q{k}", p, [{"id": "punctuation:no_comma", "kwargs": {}}])
                    for k, p in enumerate(prompts)]
    write_jsonl(tmp_path / "i.jsonl", instructions)
    return tmp_path, instructions


def test_generate_killed_mid_chunk_resumes_to_the_uninterrupted_output(tmp_path, inputs, monkeypatch):
    """Old code: a kill between the two samples of an input left it with one; the rerun counted it done."""
    args = lambda out: ["generate", "--model", "tiny-random", "--in", str(tmp_path / "i.jsonl"), "--out", str(out),
                        "--n", "2", "--temperature", "1", "--max-new-tokens", "5", "--batch-size", "4"]  # noqa: E731
    ref, out = tmp_path / "ref.jsonl", tmp_path / "out.jsonl"
    assert main(args(ref)) == 0
    assert len(read_jsonl(ref, Response)) == 10
    # batches of 4 // 2 = 2 inputs: killed after the first sample of q2, inside the second chunk
    assert interrupted_then_resumed(monkeypatch, args(out), out, 5) == ref.read_bytes()


def test_generate_output_cut_at_a_chunk_resumes_to_the_uninterrupted_output(tmp_path, inputs):
    args = lambda out: ["generate", "--model", "tiny-random", "--in", str(tmp_path / "i.jsonl"), "--out", str(out),
                        "--n", "2", "--temperature", "1", "--max-new-tokens", "5", "--batch-size", "4"]  # noqa: E731
    ref, out = tmp_path / "ref.jsonl", tmp_path / "out.jsonl"
    assert main(args(ref)) == 0
    out.write_bytes(b"".join(ref.read_bytes().splitlines(keepends=True)[:4]))  # chunk 0 (q0, q1) only
    assert main(args(out)) == 0
    assert out.read_bytes() == ref.read_bytes()


def test_generate_samples_chunk_c_with_the_loops_seed(tmp_path, inputs):
    """Pinned: chunk c (batch_size // n inputs) samples with seed * 100003 + c, as the loop's sample stage does.
    (Old code sampled every batch with --seed itself; chunk 0 of seed 0 is unchanged.)"""
    from spar.backends import make_backend

    _, instructions = inputs
    out = tmp_path / "out.jsonl"
    assert main(["generate", "--model", "tiny-random", "--in", str(tmp_path / "i.jsonl"), "--out", str(out),
                 "--n", "2", "--temperature", "1", "--max-new-tokens", "5", "--batch-size", "4", "--seed", "3"]) == 0
    backend = make_backend("hf", "tiny-random", batch_size=4)
    want = []
    for c in range(3):
        chats = [[{"role": "user", "content": i.prompt}] for i in instructions[2 * c: 2 * c + 2]]
        params = SamplingParams(n=2, temperature=1.0, max_new_tokens=5, seed=3 * 100_003 + c)
        want += [row[j].text for row in backend.generate(chats, params) for j in range(2)]
    assert [r.text for r in read_jsonl(out, Response)] == want


@pytest.fixture
def responses(tmp_path, inputs):
    _, instructions = inputs
    write_jsonl(tmp_path / "r.jsonl", [Response(i.id, k, f"answer {k}, of {i.id}") for i in instructions
                                       for k in range(2)])
    return tmp_path / "r.jsonl"


def test_judge_killed_mid_chunk_resumes_to_the_uninterrupted_output(tmp_path, responses, monkeypatch):
    """Old code judged the rest of a chunk cut short in a batch of its own, with the next chunk's responses."""
    args = lambda out: ["judge", "--in", str(responses), "--instructions", str(tmp_path / "i.jsonl"),  # noqa: E731
                        "--out", str(out), "--judge", "llm", "--model", "tiny-random", "--n", "2",
                        "--max-new-tokens", "6", "--resample", "0", "--chunk", "3"]
    ref, out = tmp_path / "ref.jsonl", tmp_path / "out.jsonl"
    assert main(args(ref)) == 0
    assert [json.loads(x)["response_id"] for x in ref.read_text().splitlines()][:3] == ["q0#0", "q0#1", "q1#0"]
    # chunks of 3 responses: killed after 4 judgments, inside the second chunk
    assert interrupted_then_resumed(monkeypatch, args(out), out, 4) == ref.read_bytes()
    # an output cut at a chunk's end by hand resumes the same way
    out.write_bytes(b"".join(ref.read_bytes().splitlines(keepends=True)[:6]))
    assert main(args(out)) == 0 and out.read_bytes() == ref.read_bytes()


def test_judge_verb_writes_what_the_loops_judge_stage_writes(tmp_path, responses):
    """One judge stage: `spar judge` is selfplay/collect.judge_responses over chunks of --chunk responses."""
    from spar.config import JudgeConfig
    from spar.judge import judge_from_config
    from spar.selfplay.collect import judge_responses

    out = tmp_path / "out.jsonl"
    assert main(["judge", "--in", str(responses), "--instructions", str(tmp_path / "i.jsonl"), "--out", str(out),
                 "--judge", "verifier", "--chunk", "4"]) == 0
    instructions = {i.id: i for i in read_jsonl(tmp_path / "i.jsonl", Instruction)}
    judge = judge_from_config(JudgeConfig(kind="verifier"), None, 0)
    direct = judge_responses(instructions, read_jsonl(responses, Response), judge, tmp_path / "direct.jsonl", 4,
                             per_response=True)
    assert out.read_bytes() == direct.read_bytes()


def test_search_killed_mid_chunk_resumes_to_the_uninterrupted_output(tmp_path, inputs, monkeypatch):
    """Old code grew every tree in one batch; the trees left after a kill were grown in another batch, with other
    samples. Now --chunk negatives grow together, chunk c with seed search.seed + c, as in the loop."""
    _, instructions = inputs
    write_jsonl(tmp_path / "n.jsonl", [Negative(i.id, f"{i.id}#0", "a, b", "has a comma") for i in instructions])
    args = lambda out: ["search", "--in", str(tmp_path / "n.jsonl"), "--instructions",  # noqa: E731
                        str(tmp_path / "i.jsonl"), "--out", str(out), "--model", "tiny-random", "--judge", "verifier",
                        "--max-depth", "1", "--max-new-tokens", "6", "--chunk", "2"]
    ref, out = tmp_path / "ref.jsonl", tmp_path / "out.jsonl"
    assert main(args(ref)) == 0
    assert [json.loads(x)["instruction_id"] for x in ref.read_text().splitlines()] == [i.id for i in instructions]
    assert interrupted_then_resumed(monkeypatch, args(out), out, 3) == ref.read_bytes()
    shutil.copy(ref, out)
    assert main(args(out)) == 0 and out.read_bytes() == ref.read_bytes()  # complete: nothing to do
