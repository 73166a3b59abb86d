"""The model's worker thread: requests of many clients decoded together.

    scheduler = Scheduler(actor, refiner, judge_cfg, SearchConfig(), window=0.005)
    scheduler.start()
    job = scheduler.submit(request, deliver)     # from any thread; deliver(Result | APIError) is called once
    job.cancel()                                 # the client left: its work is dropped at the next step
    scheduler.stop()

torch is not re-entrant, so one thread owns the model and the HTTP event
loop only hands it work. The thread runs ticks. A tick gathers the requests
that arrived (when idle, it waits `window` seconds after the first one, so
a burst becomes one batch), then:

1. answers every new request in one backend call per sampling setting
   (all greedy requests with the same max_tokens share one batch);
2. judges the answers of best_of_n, bfs and dfs requests in one judge call;
3. advances every running tree search, of every request, by one step
   through the multi-tree engine (`spar.search.engine.Forest`): one refine
   batch and one judge call for all of them. New requests join the forest
   between steps, so a long search never holds a short request back for
   more than a step.

The strategies are those of `spar.decoding` (same rules: bfs/dfs refine
the first answer when it is judged wrong, within `budget` generated
responses, and keep it when no refinement beats it). A request's `n`
choices are n independent decodings. `usage.completion_tokens` counts
every token generated for the request: answers, refinements and the
judge's votes (a judgment shared by identical requests in one batch is
charged to each).
"""

from __future__ import annotations

import itertools
import json
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from spar.backends.base import Backend, SamplingParams
from spar.config import JudgeConfig, SearchConfig
from spar.errors import UserError
from spar.judge import HybridJudge, Item, Judge, LLMJudge, Verdict, judge_request
from spar.records import Instruction, Tree
from spar.search.engine import Forest, Root
from spar.serve.protocol import APIError, ChatRequest

_IDS = itertools.count(1)


@dataclass
class Choice:
    text: str = ""
    finish: str = "stop"
    value: float | None = None
    tree: Tree | None = None
    done: bool = False


@dataclass
class Result:
    choices: list[Choice]
    prompt_tokens: int
    tokens: dict[str, int]  # generated tokens by kind: answer, refine, judge
    responses: int  # generated responses (answers + refinements), the budget's unit
    seconds: float


@dataclass(eq=False)  # a job is itself: compared by identity, never field by field
class Job:
    request: ChatRequest
    deliver: Callable[[Any], None]
    id: str = field(default_factory=lambda: f"req-{next(_IDS)}")
    cancelled: bool = False
    choices: list[Choice] = field(default_factory=list)
    prompt_tokens: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: {"answer": 0, "refine": 0, "judge": 0})
    responses: int = 0
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.choices = [Choice() for _ in range(self.request.n)]
        self.instruction = Instruction(self.id, self.request.prompt, self.request.constraints, source="serve")

    def cancel(self) -> None:
        """Safe from any thread: the worker drops the job's work before its next backend call."""
        self.cancelled = True


class _Meter:
    """The refiner's backend, charging the tokens of judge chats to the jobs that own them."""

    def __init__(self, backend: Backend):
        self.backend, self.name = backend, backend.name
        self.owners: dict[str, list[Job]] = {}

    def generate(self, chats, params):
        outs = self.backend.generate(chats, params)
        for chat, row in zip(chats, outs):
            for job in self.owners.get(_chat_key(chat), ()):
                job.tokens["judge"] += sum(c.completion_tokens for c in row)
        return outs

    def close(self) -> None:
        self.backend.close()


class _ChargedJudge:
    """A judge whose LLM calls are charged to the requests whose responses it judges."""

    def __init__(self, judge: Judge, meter: _Meter, jobs: dict[str, Job]):
        self.inner, self.meter, self.jobs = judge, meter, jobs
        # the chat the LLM judge is sent: plain for the llm judge, with code's findings for the hybrid one
        self.variants = [True] if isinstance(judge, HybridJudge) else [False] if isinstance(judge, LLMJudge) else []

    def judge(self, items: Sequence[Item]) -> list[Verdict]:
        owners: dict[str, list[Job]] = {}
        for inst, response in items:
            job = self.jobs.get(inst.id)
            for hybrid in self.variants:
                key = _chat_key(judge_request(inst, response, hybrid))
                if job is not None and job not in owners.setdefault(key, []):
                    owners[key].append(job)
        self.meter.owners = owners
        try:
            return self.inner.judge(items)
        finally:
            self.meter.owners = {}

    def cached(self) -> int:
        judges = (self.inner, getattr(self.inner, "llm", None))  # a hybrid judge's LLM judge has its own cache
        return sum(len(getattr(j, "cache", ())) for j in judges)

    def clear(self) -> None:
        """Forget cached verdicts (a long-running server would otherwise keep every text it ever judged)."""
        for j in (self.inner, getattr(self.inner, "llm", None)):
            if j is not None and hasattr(j, "cache"):
                j.cache.clear()


def _chat_key(chat) -> str:
    return json.dumps(chat, sort_keys=True, ensure_ascii=False)


class Scheduler:
    def __init__(self, actor: Backend, refiner: Backend | None = None, judge: JudgeConfig | None = None,
                 search: SearchConfig | None = None, window: float = 0.005, seed: int = 0,
                 max_cache: int = 50_000):
        from spar.judge import judge_from_config

        self.actor = actor
        self.meter = _Meter(refiner or actor)
        self.search = search or SearchConfig()
        self.seed = seed
        self.window = window
        self.max_cache = max_cache
        self.jobs: dict[str, Job] = {}  # every job admitted and not yet delivered
        judge_cfg = judge or JudgeConfig()
        asked = self.meter if judge_cfg.kind != "verifier" else None
        self.judge = _ChargedJudge(judge_from_config(judge_cfg, asked, seed), self.meter, self.jobs)
        self.forest = Forest(self.meter, self.judge, self.search, charge=self._charge_refine)
        self.inbox: queue.Queue[Job | None] = queue.Queue()
        self.fresh: list[Job] = []  # admitted, no answer yet
        self.thread: threading.Thread | None = None
        self.stopping = False
        self.stats = {"requests": 0, "done": 0, "cancelled": 0, "failed": 0, "ticks": 0, "answer_calls": 0,
                      "forest_steps": 0}
        self.error: BaseException | None = None  # what stopped the worker, if it died

    # ---- called from other threads ----

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="spar-serve-model", daemon=True)
        self.thread.start()

    def submit(self, request: ChatRequest, deliver: Callable[[Any], None]) -> Job:
        if self.stopping or (self.thread is not None and not self.thread.is_alive()):
            raise APIError(503, "the server is shutting down; retry on another server", type="server_error",
                           code="shutting_down")
        job = Job(request, deliver)
        self.inbox.put(job)
        return job

    def pending(self) -> int:
        """Requests queued or in progress."""
        return self.inbox.qsize() + len(self.jobs)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the current tick, fail what is left with 503, end the thread."""
        self.stopping = True
        self.inbox.put(None)
        if self.thread is not None:
            self.thread.join(timeout)

    # ---- the worker thread ----

    def _run(self) -> None:
        try:
            while not self.stopping:
                self._admit()
                if self.stopping:
                    break
                self._drop_cancelled()
                if self.fresh:
                    self._answer(self.fresh)
                    self.fresh = []
                if self.forest:
                    self._grow()
                self.stats["ticks"] += 1
                if not self.jobs or self.judge.cached() > self.max_cache:
                    self.judge.clear()
        except BaseException as e:  # noqa: BLE001 - the worker must never die silently: fail every waiting client
            self.error = e
            raise
        finally:
            self.stopping = True
            reason = APIError(503, "the server is shutting down" if self.error is None else
                              f"the model worker stopped ({type(self.error).__name__}: {self.error})",
                              type="server_error", code="shutting_down")
            while True:
                try:
                    job = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    self.jobs[job.id] = job
            for job in list(self.jobs.values()):
                self._fail(job, reason)

    def _admit(self) -> None:
        """Take the requests that arrived; when idle, wait for one, then `window` seconds for its batch mates."""
        busy = bool(self.jobs)
        try:
            first = self.inbox.get() if not busy else self.inbox.get_nowait()
        except queue.Empty:
            return
        batch = [first]
        deadline = time.perf_counter() + (0 if busy else self.window)
        while True:
            left = deadline - time.perf_counter()
            try:
                batch.append(self.inbox.get(timeout=left) if left > 0 else self.inbox.get_nowait())
            except queue.Empty:
                break
        for job in batch:
            if job is None:  # stop() was called
                self.stopping = True
                continue
            self.stats["requests"] += 1
            self.jobs[job.id] = job
            self.fresh.append(job)

    def _drop_cancelled(self) -> None:
        for job in [j for j in self.jobs.values() if j.cancelled]:
            self._forget(job)
            self.stats["cancelled"] += 1

    def _forget(self, job: Job) -> None:
        self.jobs.pop(job.id, None)
        for i in range(len(job.choices)):
            self.forest.drop((job.id, i))
        if job in self.fresh:
            self.fresh.remove(job)

    def _answer(self, jobs: list[Job]) -> None:
        """First answers of new jobs, one backend call per sampling setting; then one judge call."""
        groups: dict[SamplingParams, list[Job]] = {}
        for job in jobs:
            groups.setdefault(self._answer_params(job.request), []).append(job)
        to_judge: list[tuple[Job, list]] = []
        for params, group in groups.items():
            try:
                outs = self.actor.generate([j.request.messages for j in group], params)
            except Exception as e:  # noqa: BLE001 - fail these requests, keep serving the others
                for job in group:
                    self._fail(job, e)
                continue
            self.stats["answer_calls"] += 1
            for job, row in zip(group, outs):
                job.prompt_tokens = row[0].prompt_tokens if row else 0
                job.tokens["answer"] += sum(c.completion_tokens for c in row)
                job.responses += len(row)
                if job.request.strategy == "greedy":
                    for choice, c in zip(job.choices, row):
                        choice.text, choice.finish, choice.done = c.text, c.finish_reason, True
                    self._deliver(job)
                else:
                    to_judge.append((job, row))
        if not to_judge:
            return
        items = [(job.instruction, c.text) for job, row in to_judge for c in row]
        try:
            verdicts = iter(self.judge.judge(items))
        except Exception as e:  # noqa: BLE001
            for job, _ in to_judge:
                self._fail(job, e)
            return
        for job, row in to_judge:
            rated = [(c, next(verdicts)) for c in row]
            if job.request.strategy == "best_of_n":
                self._pick_best(job, rated)
            else:
                self._plant(job, rated)
            if all(c.done for c in job.choices):
                self._deliver(job)

    def _answer_params(self, req: ChatRequest) -> SamplingParams:
        """bfs/dfs refine the greedy answer (as spar.decoding) unless the request sets a temperature;
        best_of_n samples at 0.9 / top_p 0.9 unless it sets them."""
        if req.strategy == "best_of_n":
            return SamplingParams(n=req.n * req.budget, temperature=0.9 if req.temperature is None else req.temperature,
                                  top_p=0.9 if req.top_p is None else req.top_p, max_new_tokens=req.max_tokens,
                                  stop=req.stop, seed=req.seed)
        return SamplingParams(n=req.n, temperature=req.temperature or 0.0, top_p=req.top_p or 1.0,
                              max_new_tokens=req.max_tokens, stop=req.stop, seed=req.seed)

    def _pick_best(self, job: Job, rated: list) -> None:
        budget = job.request.budget
        for i, choice in enumerate(job.choices):
            mine = rated[i * budget:(i + 1) * budget]
            best = max(range(budget), key=lambda j: ((mine[j][1].value or 0.0), -j))
            c, v = mine[best]
            choice.text, choice.finish, choice.value, choice.done = c.text, c.finish_reason, v.value, True

    def _plant(self, job: Job, rated: list) -> None:
        """Each answer judged right (or with no budget left) is final; the others root a tree search."""
        req = job.request
        cfg = replace(self.search, strategy=req.strategy, max_refinements=req.budget - 1,
                      max_depth=max(req.budget, self.search.max_depth),
                      seed=self.search.seed if req.seed is None else req.seed)
        for i, (choice, (c, v)) in enumerate(zip(job.choices, rated)):
            choice.text, choice.finish, choice.value = c.text, c.finish_reason, v.value
            if v.label == "yes" or req.budget == 1:
                choice.done = True
                continue
            tree = self.forest.add((job.id, i), Root(job.instruction, c.text, v.critique, v.votes, v.value), cfg)
            if tree is not None:
                self._harvest(job, choice, tree)

    def _grow(self) -> None:
        """One step of every running search: one refine batch, one judge call."""
        try:
            finished = self.forest.step()
        except Exception as e:  # noqa: BLE001 - the step's trees are lost: fail their requests
            for job_id in {key[0] for key in self.forest.runs}:
                if job_id in self.jobs:
                    self._fail(self.jobs[job_id], e)
            self.forest.runs.clear()
            return
        self.stats["forest_steps"] += 1
        for (job_id, i), tree in finished.items():
            job = self.jobs.get(job_id)
            if job is None:
                continue
            self._harvest(job, job.choices[i], tree)
            if all(c.done for c in job.choices):
                self._deliver(job)

    def _harvest(self, job: Job, choice: Choice, tree: Tree) -> None:
        """The tree's best node becomes the answer if it beats the first answer (as spar.decoding)."""
        job.responses += tree.calls["refine"]
        best = next(n for n in tree.nodes if n["id"] == tree.best)
        if best["id"] != tree.root and (best["value"] or 0.0) >= (choice.value or 0.0):
            text = best["response"]
            for s in job.request.stop:  # the refiner is not told the stop strings: cut the answer here
                text = text.split(s, 1)[0]
            choice.text, choice.value = text, best["value"]
            choice.finish = "length" if best.get("truncated") else "stop"
        choice.tree, choice.done = tree, True

    def _charge_refine(self, key, tokens: int) -> None:
        job = self.jobs.get(key[0])
        if job is not None:
            job.tokens["refine"] += tokens

    def _deliver(self, job: Job) -> None:
        self.jobs.pop(job.id, None)
        self.stats["done"] += 1
        result = Result(job.choices, job.prompt_tokens, dict(job.tokens), job.responses,
                        time.perf_counter() - job.started)
        _call(job.deliver, result)

    def _fail(self, job: Job, error: BaseException) -> None:
        self._forget(job)
        self.stats["failed"] += 1
        if not isinstance(error, APIError):
            status = 400 if isinstance(error, UserError) else 500
            error = APIError(status, f"{type(error).__name__}: {error}", type="invalid_request_error" if status == 400
                             else "server_error", code=None)
        _call(job.deliver, error)


def _call(deliver, value) -> None:
    try:
        deliver(value)
    except RuntimeError:  # the client's event loop is gone (server shutting down): nobody is waiting
        pass
