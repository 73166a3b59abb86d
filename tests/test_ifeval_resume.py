"""`spar eval ifeval` writes answers as they come and resumes (issue 12 item 6).

Old code generated every answer in one call and wrote responses.jsonl only at the end: an interrupted run (a full
IFEval run on a CPU takes about an hour) lost everything, and a rerun started again from the first prompt.
"""

import json

import spar.backends
from spar.backends.scripted import ScriptedBackend
from spar.cli import main
from spar.data.ifeval_rows import load_ifeval


class Crash(Exception):
    pass


def _scripted(monkeypatch, fail_after: int | None = None):
    """make_backend returns a scripted backend answering "Answer to <key>"; it raises after `fail_after` chats."""
    made = []

    def respond(chat, i):
        if fail_after is not None and sum(len(c) for c, _ in backend.calls) > fail_after:
            raise Crash("killed")
        return "answer: " + chat[-1]["content"][:20]

    backend = ScriptedBackend(respond=respond)
    monkeypatch.setattr(spar.backends, "make_backend", lambda *a, **k: made.append(a) or backend)
    return backend, made


def _args(data, out, *more):
    return ["eval", "ifeval", "--model", "tiny-random", "--data", str(data), "--out", str(out), "--batch-size", "4",
            *more]


def test_interrupted_run_resumes_and_drops_a_torn_line(ifeval_sample, tmp_path, monkeypatch):
    rows = load_ifeval(ifeval_sample)
    out = tmp_path / "out"
    backend, _ = _scripted(monkeypatch, fail_after=8)  # the third batch of 4 dies
    try:
        main(_args(ifeval_sample, out))
    except Crash:
        pass
    lines = (out / "responses.jsonl").read_text().splitlines()
    assert len(lines) == 8  # two whole batches written before the crash
    with open(out / "responses.jsonl", "a") as f:  # a write cut short by the kill
        f.write('{"key": 99, "prompt": "half')
    backend, made = _scripted(monkeypatch)
    assert main(_args(ifeval_sample, out)) == 0
    asked = [c[-1]["content"] for chats, _ in backend.calls for c in chats]
    assert asked == [r.prompt for r in rows[8:]]  # only the unanswered prompts
    records = [json.loads(x) for x in (out / "responses.jsonl").read_text().splitlines()]
    assert sorted(r["prompt"] for r in records) == sorted(r.prompt for r in rows)
    assert json.loads((out / "metrics.json").read_text())["n_prompts"] == len(rows)
    # a third run has nothing to generate and loads no model
    backend, made = _scripted(monkeypatch)
    assert main(_args(ifeval_sample, out)) == 0 and not made and not backend.calls


def test_resume_refuses_answers_of_another_model(ifeval_sample, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    _scripted(monkeypatch)
    assert main(_args(ifeval_sample, out, "--limit", "2")) == 0
    before = (out / "responses.jsonl").read_bytes()
    assert main(_args(ifeval_sample, out, "--max-new-tokens", "64")) == 2
    assert "max_new_tokens=1280" in capsys.readouterr().err
    assert (out / "responses.jsonl").read_bytes() == before
