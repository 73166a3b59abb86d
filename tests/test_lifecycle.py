"""Generation engines are opened per stage and closed before training: counted live, and measured in RSS.

The loop keeps an engine while consecutive stages use it (base eval -> sample on the actor, judge -> search on
the refiner, eval of M_{t+1} -> sample of iteration t+1) and closes every engine a stage does not use before it
starts; training starts with none open. A counting backend (standing in for hf/vllm through `make_backend`)
records which engines are live at every stage; the RSS test loads a real model through the loop and closes it.
"""

import json
import sys
from pathlib import Path

import pytest

from spar.backends import Completion
from spar.config import load_config
from spar.parsing import REFINED_END
from spar.selfplay.loop import Loop
from spar.selfplay.rundir import RunDir

REPO = Path(__file__).resolve().parents[1]
LOOP = REPO / "tests" / "assets" / "loop.yaml"


class CountingBackend:
    """A scripted engine that knows which engines are open: `live` holds every one not yet closed."""

    live: list["CountingBackend"] = []
    opened: list[str] = []
    generating: list[list[str]] = []  # the live engines at each generate call

    def __init__(self, name: str, **options):
        assert all(e.name != name for e in CountingBackend.live), f"a second live engine on {name}"
        self.name, self.options, self.closed = name, options, False
        CountingBackend.live.append(self)
        CountingBackend.opened.append(name)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            CountingBackend.live.remove(self)

    def generate(self, chats, params):
        assert not self.closed, f"generate on the closed engine {self.name}"
        CountingBackend.generating.append(_live())
        return [[Completion(_reply(chat, i)) for i in range(params.n)] for chat in chats]


def _reply(chat, i: int) -> str:
    """Actor and refiner in one (iteration 0 shares the engine): answers, judgments, prefilled refinements."""
    if chat[-1]["role"] == "assistant":
        return f'"A quoted answer."\n{REFINED_END}'
    if "[Response]" in chat[0]["content"]:
        quoted = chat[0]["content"].split("[Response]")[1].strip().startswith('"')
        return "Quoted.\nVerdict: Yes" if quoted == (i < 2) else "Not quoted.\nVerdict: No"
    return "A plain note."


def _live() -> list[str]:
    return [Path(e.name).name if "/" in e.name else e.name for e in CountingBackend.live]


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """Run two iterations with counting engines and recording trainers; returns the (stage, live engines) log."""
    import spar.backends
    import spar.train.dpo
    import spar.train.rft

    CountingBackend.live, CountingBackend.opened, CountingBackend.generating = [], [], []
    log: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(spar.backends, "make_backend", lambda kind, name, **options: CountingBackend(name, **options))

    def trainer(kind):
        def train(model_dir, data, out_dir, settings, data_file=None):
            log.append((f"{kind} (inside the trainer)", _live()))
            out = Path(out_dir)
            out.mkdir(parents=True)
            (out / "config.json").write_text("{}")
            (out / "model.safetensors").write_bytes(kind.encode())
            (out / "train_metrics.json").write_text(json.dumps({"loss": 0.0}))
            return out
        return train

    monkeypatch.setattr(spar.train.dpo, "train_dpo", trainer("train_dpo"))
    monkeypatch.setattr(spar.train.rft, "train_rft", trainer("train_rft"))
    record = RunDir.record

    def logged(self, t, stage, **info):
        log.append((f"{t}/{stage}", _live()))
        return record(self, t, stage, **info)

    monkeypatch.setattr(RunDir, "record", logged)

    def run(*overrides):
        cfg = load_config(LOOP, [f"out_dir={tmp_path}", f"data.source={REPO / 'tests/assets/quote_instructions.jsonl'}",
                                 "iterations=2", "judge.kind=llm", "judge.n=3", "search.prefill=true",
                                 "refiner.name=tiny-random", "refiner.backend=hf", "refiner.options={}",
                                 "refiner.batch_size=16", *overrides])
        Loop(cfg).run()
        log.append(("after the run", _live()))
        return log

    return run


def test_no_engine_is_live_during_training_and_one_model_is_never_loaded_twice(counted):
    """Old code kept iteration t's eval engine (the new actor) open while iteration t+1 opened the new refiner
    for judging (two engines at once: on GPUs the second does not fit), and left the last engine open after
    the run."""
    log = counted()
    for stage, live in log:
        print(f"{stage:32} {live}")
        assert len(live) <= 1, f"{stage}: {live} live together"
        if "train" in stage:
            assert live == [], f"{stage}: engines {live} live during training"
    assert log[-1] == ("after the run", [])
    stages = dict(log)
    # iteration 0: actor and refiner are the same model with the same settings: one engine, loaded once
    assert stages["base/eval"] == stages["0/sample"] == stages["0/judge"] == stages["0/search"] == ["tiny-random"]
    # iteration 1 generates from iteration 0's checkpoints: the eval engine (M_1) samples, then M_1 closes
    assert stages["0/eval"] == stages["1/sample"] == ["actor"] and stages["1/search"] == ["refiner"]
    assert [Path(n).name for n in CountingBackend.opened] == ["tiny-random", "actor", "refiner", "actor"]


def test_roles_with_different_settings_get_their_own_engine_one_at_a_time(counted):
    log = counted("refiner.batch_size=8")
    assert all(len(live) <= 1 for _, live in log) and log[-1] == ("after the run", [])
    assert all(live == [] for stage, live in log if "train" in stage)
    opened = [Path(n).name for n in CountingBackend.opened]
    assert opened == ["tiny-random", "tiny-random", "actor", "refiner", "actor"]  # actor, refiner; M_1, R_1; M_2


def test_evaluation_with_a_soft_judge_opens_the_judge_after_the_actor_has_closed(counted, tmp_path):
    """eval.soft_judge judges held-out soft constraints with a fixed model (the starting refiner). Old code
    opened it beside the evaluated actor, two engines at once in every evaluation after iteration 0."""
    rows = [json.loads(line) for line in (REPO / "tests/assets/quote_instructions.jsonl").read_text().splitlines()]
    for row in rows[-2:]:
        row["split"] = "heldout"
        row["constraints"].append({"id": "soft:style", "kwargs": {"text": "Write in a formal tone."}})
    data = tmp_path / "with_soft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    log = counted(f"data.source={data}", "eval.soft_judge=true")
    assert all(len(live) <= 1 for live in CountingBackend.generating), CountingBackend.generating
    assert all(len(live) <= 1 for _, live in log) and log[-1] == ("after the run", [])
    # after iteration 0 the evaluated actor (M_1) answers, closes, and the starting refiner judges
    # (iteration 1 samples with M_1 again: one more engine start per evaluation, the price of one at a time)
    assert [Path(n).name for n in CountingBackend.opened] == ["tiny-random", "actor", "tiny-random", "actor",
                                                              "refiner", "actor", "tiny-random"]
    scores = json.loads((tmp_path / "loop" / "manifest.json").read_text())["iterations"]["1"]["eval"]["scores"]
    assert scores["heldout_n"] == 2 and scores["heldout_soft_n"] == 2


def test_the_engines_are_closed_when_the_run_fails(counted, monkeypatch):
    """An error (or Ctrl-C) mid-stage must not leave an engine's processes behind."""
    import spar.selfplay.collect

    def broken(*args, **kwargs):
        assert _live() == ["tiny-random"]
        raise KeyboardInterrupt

    monkeypatch.setattr(spar.selfplay.collect, "select_negatives", broken)
    with pytest.raises(KeyboardInterrupt):
        counted()
    assert CountingBackend.live == []


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _mid_size_model(path: Path) -> Path:
    """A random 6-layer Llama of ~83 MB in fp32: big enough to see in RSS, quick to build."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from spar.models import tiny_tokenizer

    tok = tiny_tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=512, intermediate_size=1536, num_hidden_layers=6,
                         num_attention_heads=8, num_key_value_heads=8, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _measure_stages(model: str, tmp: Path) -> dict:
    """Open an hf engine for a stage, generate, close it; twice. RSS in MB at each point, measured in the
    process that calls this (a fresh one: see the test)."""
    import gc

    from spar.backends import SamplingParams, make_backend
    from spar.models import loaded_models

    name = str(_mid_size_model(tmp / "mid")) if model == "mid-size" else model
    warm = make_backend("hf", "tiny-random")  # imports and first-use allocations, outside the measurement
    warm.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_new_tokens=4))
    del warm
    gc.collect()
    loop = Loop(load_config(None, [f"out_dir={tmp}", f"actor.name={name}", "actor.batch_size=4"]))
    chats = [[{"role": "user", "content": f"Write a line about {w}."}] for w in ("rain", "cats", "tea", "snow")]
    base = _rss_mb()
    held, rows = [], []
    for stage in range(2):  # twice: a second stage (iteration t+1) does not pile onto the first
        loop.use(("actor", name))
        backend = loop.backend("actor", name)
        backend.generate(chats, SamplingParams(n=2, temperature=0.9, max_new_tokens=16, seed=stage))
        held.append(backend)  # like the judge and closures a stage leaves behind
        peak = _rss_mb()
        loop.release_models()
        rows.append((peak, _rss_mb()))
    released = loaded_models() == [] and all(b.model is None for b in held)
    held[0].close()  # twice is harmless; a closed backend refuses to generate
    try:
        held[0].generate(chats, SamplingParams(max_new_tokens=4))
        refused = False
    except RuntimeError as e:
        refused = "was closed" in str(e)
    return {"base": base, "rows": rows, "released": released, "refused": refused}


@pytest.mark.parametrize("model", ["mid-size", pytest.param("smollm2-135m-instruct", marks=pytest.mark.slow)])
def test_memory_returns_near_its_baseline_after_an_hf_stage_closes(model, tmp_path, capsys):
    """Measured: the loop opens an hf engine for a stage, generates, and closes it; resident memory goes back
    to its baseline although the stage's objects (a judge, a search closure) still hold the backend. Old code
    only dropped its own reference to the backend, and load_model's lru_cache held the model: nothing was freed.

    Measured in a fresh process: inside a long test session, memory freed by earlier tests is reused, so a
    new model may not raise RSS at all."""
    import json
    import subprocess
    import sys

    script = (f"import json, sys; from pathlib import Path; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
              f"from test_lifecycle import _measure_stages; "
              f"print(json.dumps(_measure_stages({model!r}, Path({str(tmp_path)!r}))))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads(out.stdout.strip().splitlines()[-1])
    base, rows = m["base"], m["rows"]
    with capsys.disabled():
        print(f"\nRSS ({model}): baseline {base:.0f} MB; " + "; ".join(
            f"stage {i}: peak {p:.0f} MB, after close {a:.0f} MB" for i, (p, a) in enumerate(rows)))
    for peak, after in rows:
        assert peak - base > 50, f"the model should show in RSS (baseline {base:.0f} MB, peak {peak:.0f} MB)"
        assert after - base < 0.2 * (peak - base), (f"RSS stayed at {after:.0f} MB after close (baseline {base:.0f} "
                                                    f"MB, peak {peak:.0f} MB)")
    assert m["released"] and m["refused"]


FAKE_SERVER = '''
import argparse, json, os, subprocess, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
ap = argparse.ArgumentParser()
for flag in ("--model", "--served-model-name", "--host", "--tensor-parallel-size", "--max-model-len"):
    ap.add_argument(flag)
ap.add_argument("--port", type=int)
args = ap.parse_args()
if os.environ.get("FAIL_TO_START"):
    sys.exit("no GPU found")
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # like vLLM's engine workers
with open(os.environ["WORKERS"], "a") as f:
    f.write(f"{worker.pid}\\n")
where = f"gpus={os.environ['CUDA_VISIBLE_DEVICES']} tp={args.tensor_parallel_size} model={args.served_model_name}"

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def reply(self, payload):
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self.reply({"data": [{"id": args.served_model_name}]})
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.reply({"choices": [{"index": i, "message": {"content": where}, "finish_reason": "stop"}
                                for i in range(body["n"])]})

HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
'''


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_openai_backend_starts_data_parallel_servers_and_close_stops_them(tmp_path, monkeypatch):
    """`replicas` servers, each on its own GPUs (tensor parallel inside), requests spread over all of them;
    close() ends the servers and the workers they started, so training gets the GPUs."""
    from spar.backends import SamplingParams, make_backend

    script, workers = tmp_path / "server.py", tmp_path / "workers.txt"
    script.write_text(FAKE_SERVER)
    monkeypatch.setenv("WORKERS", str(workers))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    backend = make_backend("openai", "llama", replicas=3, gpus_per_replica=2, server_command=[sys.executable,
                           str(script)], server_args=["--max-model-len", "8192"], startup_timeout=60)
    chats = [[{"role": "user", "content": f"q{i}"}] for i in range(9)]
    texts = {c.text for row in backend.generate(chats, SamplingParams(n=2)) for c in row}
    assert texts == {f"gpus={g} tp=2 model=llama" for g in ("0,1", "2,3", "4,5")}
    pids = [int(x) for x in workers.read_text().split()] + [p.pid for p in backend.servers]
    assert len(pids) == 6 and all(_alive(pid) for pid in pids)
    backend.close()
    assert not any(_alive(pid) for pid in pids)
    backend.close()
    with pytest.raises(RuntimeError, match="closed"):
        backend.generate(chats, SamplingParams())


def test_a_server_that_fails_to_start_is_named_with_its_log(tmp_path, monkeypatch):
    from spar.backends import make_backend

    script = tmp_path / "server.py"
    script.write_text(FAKE_SERVER)
    monkeypatch.setenv("WORKERS", str(tmp_path / "workers.txt"))
    monkeypatch.setenv("FAIL_TO_START", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    with pytest.raises(RuntimeError, match=r"exited with code 1 while starting; its output: .*\.log\nno GPU found"):
        make_backend("openai", "llama", replicas=2, gpus_per_replica=2, server_command=[sys.executable, str(script)])
    with pytest.raises(ValueError, match="needs 6 GPUs, CUDA_VISIBLE_DEVICES=4,5,6,7 lists 4"):
        make_backend("openai", "llama", replicas=3, gpus_per_replica=2, server_command=[sys.executable, str(script)])


def test_requests_never_share_a_sample_seed(tmp_path, monkeypatch):
    """vLLM seeds choice j of a request with seed + j. Old code sent seed + index, so chat i's sample j and chat
    i+1's sample j-1 drew the same random numbers (seen on a real vLLM server: identical samples across chats)."""
    from spar.backends import SamplingParams, make_backend

    script, workers = tmp_path / "server.py", tmp_path / "workers.txt"
    script.write_text(FAKE_SERVER.replace('"message": {"content": where}',
                                          '"message": {"content": str(body["seed"] + i)}'))
    monkeypatch.setenv("WORKERS", str(workers))
    with make_backend("openai", "m", replicas=1, server_command=[sys.executable, str(script)]) as backend:
        out = backend.generate([[{"role": "user", "content": str(i)}] for i in range(4)], SamplingParams(n=3, seed=7))
    seeds = [int(c.text) for row in out for c in row]
    # issue 13: a request's seed comes from its chat, not its batch position, so the seeds are no longer 7..18;
    # what this test is about still holds: 12 samples, 12 different seeds, choice j of a chat at its seed + j
    assert len(set(seeds)) == 12 and all(row[j].text == str(int(row[0].text) + j) for row in out for j in range(3))


TERMINATED_RUN = """
import sys, time
from pathlib import Path
from spar.backends.scripted import ScriptedBackend
import spar.backends
from spar.cli import main

marks = Path(sys.argv[1])

class Slow(ScriptedBackend):
    def generate(self, chats, params):
        (marks / "generating").touch()
        time.sleep(60)  # stands in for a long generation: SIGTERM arrives here
        return super().generate(chats, params)

    def close(self):
        (marks / "closed").touch()
        super().close()

spar.backends.make_backend = lambda kind, name, **options: Slow(name=name)  # the loop opens its engines with it
sys.exit(main(["run", "--config", sys.argv[2], f"out_dir={marks}", "iterations=1"]))
"""


def test_sigterm_closes_the_engines_before_the_command_exits(tmp_path):
    """`kill` (SIGTERM) of a `spar run` unwinds like Ctrl-C: the open engine is closed (a vLLM engine's processes
    were left running at full CPU after the command died) and the exit status says how it ended."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen([sys.executable, "-c", TERMINATED_RUN, str(tmp_path), str(LOOP)], cwd=REPO,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "generating").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143, err
    assert (tmp_path / "closed").exists()
    assert "spar run: terminated (SIGTERM); rerun the same command to resume" in err
