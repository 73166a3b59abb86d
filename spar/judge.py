"""Judges: does a response follow its instruction?

    judge = make_judge("hybrid", backend, n=5)
    verdicts = judge.judge([(instruction, response_text), ...])

* `LLMJudge` - the paper's judge: the refiner answers the judge prompt n
  times (one batched backend call for all items) and the majority labels
  the response; value = yes / (yes + no), invalid votes ignored. A value
  needs `min_valid` readable votes (default: a majority of n): with fewer,
  or on a tie, the undecided items get another n votes, up to `resample`
  more rounds (one batched call per round); still short of readable votes,
  the judge abstains with value None (one "yes" among four unreadable
  votes is no evidence the response is right); still tied, it abstains
  with value 0.5. Each vote is `{verdict, critique, truncated}`, truncated
  when the judgment hit max_new_tokens; the critique kept is the first
  untruncated vote that agrees with the majority (a truncated one only if
  no other agrees).
* `VerifierJudge` - code only: the exact verdict on the instruction's
  verifiable constraints, with a critique listing every failure.
* `HybridJudge` - verifiable constraints by code, the rest (soft
  constraints, or an instruction without listed constraints) by the LLM,
  told exactly what code found: which checkable requirements are met and
  which are not, and why. The verdict is the conjunction: a failed
  verifiable constraint is a "no" without asking the LLM (unless
  `always_llm`, which collects LLM votes for RFT anyway).

Everything that takes a judge (the search engine, the loop's judge stage,
decoding, the verbs, the server) asks only for the `Judge` protocol below:
`judge(items) -> verdicts`. A wrapper (the server's charged judge, the
scaling experiment's counting one, a test's table of values) is a judge too.

`judge_request(instruction, response, hybrid)` is the exact chat the LLM
judge is sent; the RFT data builder uses it too, so training examples carry
the note the judge saw. Every judge caches verdicts by (instruction,
response text): no text is judged twice in a run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from spar.backends.base import Backend, Chat, Completion, SamplingParams
from spar.config import JudgeConfig
from spar.constraints import get, is_soft, verify
from spar.parsing import parse_verdict
from spar.prompts import checked_note, judge_chat
from spar.records import Instruction

Item = tuple[Instruction, str]


@dataclass
class Verdict:
    votes: list[dict[str, Any]] = field(default_factory=list)  # {verdict, critique, truncated}
    value: float | None = None
    label: str = "abstain"  # "yes" | "no" | "abstain"
    critique: str = ""
    verifier: dict[str, Any] | None = None


class Judge(Protocol):
    """Anything that judges: one Verdict per (instruction, response) item, in input order."""

    def judge(self, items: Sequence[Item]) -> list[Verdict]: ...


def _key(instruction: Instruction, response: str) -> str:
    return json.dumps([instruction.prompt, instruction.constraints, response], sort_keys=True)


def code_findings(instruction: Instruction, response: str) -> tuple[list[str], list[tuple[str, str]]]:
    """What code finds on the instruction's checkable requirements: (met, [(unmet, why), ...]), as described."""
    met, unmet = [], []
    for c in instruction.constraints:
        if is_soft(c["id"]):
            continue
        constraint = get(c["id"])
        kwargs = constraint.validate(c.get("kwargs"))
        described = constraint.describe(kwargs)
        ok, why = constraint.evaluate(response, kwargs)
        if ok:
            met.append(described)
        else:
            unmet.append((described, why or "the check failed"))
    return met, unmet


def judge_request(instruction: Instruction, response: str, hybrid: bool) -> Chat:
    """The exact chat the LLM judge is sent for this item; `hybrid` adds what code found on checkable requirements."""
    note = checked_note(*code_findings(instruction, response)) if hybrid else ""
    return judge_chat(instruction.prompt, response, note)


def vote(completion: Completion) -> dict[str, Any]:
    return {"verdict": parse_verdict(completion.text), "critique": completion.text,
            "truncated": completion.finish_reason == "length"}


def majority_n(n: int) -> int:
    """The default `min_valid`: a majority of n votes."""
    return n // 2 + 1


def tally(votes: list[dict[str, Any]], min_valid: int = 1) -> tuple[float | None, str, str]:
    """(value, label, critique) from votes; label "abstain" on a tie or with fewer than `min_valid` valid votes."""
    yes = sum(v["verdict"] == "yes" for v in votes)
    no = sum(v["verdict"] == "no" for v in votes)
    if yes + no < max(1, min_valid):
        return None, "abstain", ""
    label = "yes" if yes > no else "no" if no > yes else "abstain"
    return yes / (yes + no), label, agreeing_critique(votes, label) or ""


def agreeing_critique(votes: list[dict[str, Any]], label: str, whole_only: bool = False) -> str | None:
    """The first critique whose vote says `label`, preferring one not cut by max_new_tokens; with
    `whole_only` a cut one is never returned (None instead), as for a training target."""
    agreeing = [v for v in votes if v["verdict"] == label]
    whole = next((v for v in agreeing if not v.get("truncated")), None)
    if whole is not None:
        return whole["critique"]
    return None if whole_only or not agreeing else agreeing[0]["critique"]


class LLMJudge:
    def __init__(self, backend: Backend, n: int = 5, temperature: float = 0.7, top_p: float = 1.0,
                 max_new_tokens: int = 256, seed: int = 0, resample: int = 2, min_valid: int | None = None):
        if min_valid is not None and not 1 <= min_valid <= n:
            raise ValueError(f"min_valid={min_valid}: must be from 1 to n={n} (or None for a majority of n)")
        self.backend, self.n, self.resample = backend, n, resample
        self.min_valid = majority_n(n) if min_valid is None else min_valid
        self.params = SamplingParams(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                     seed=seed)
        self.cache: dict[str, Verdict] = {}
        self.calls = 0  # backend calls made, for tests and benchmarks

    def judge(self, items: Sequence[Item], hybrid: bool = False) -> list[Verdict]:
        """Verdicts in input order; `hybrid` tells the LLM what code found (see `judge_request`)."""
        keys = [_key(inst, resp) + ("|hybrid" if hybrid else "") for inst, resp in items]
        todo: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in self.cache and k not in todo:
                todo[k] = i
        votes: dict[str, list[dict[str, Any]]] = {k: [] for k in todo}
        undecided = list(todo)
        for round_ in range(1 + self.resample):
            if not undecided:
                break
            chats = [judge_request(*items[todo[k]], hybrid) for k in undecided]
            seed = None if self.params.seed is None else self.params.seed + 7919 * round_
            outs = self.backend.generate(chats, self.params.with_(seed=seed))
            self.calls += 1
            for k, completions in zip(undecided, outs):
                votes[k] += [vote(c) for c in completions]
            undecided = [k for k in undecided if tally(votes[k], self.min_valid)[1] == "abstain"]
        for k in todo:
            value, label, critique = tally(votes[k], self.min_valid)
            self.cache[k] = Verdict(votes=votes[k], value=value, label=label, critique=critique)
        return [self.cache[k] for k in keys]


class VerifierJudge:
    """Exact verdicts from the constraint library; soft constraints are ignored."""

    def __init__(self):
        self.cache: dict[str, Verdict] = {}

    def judge(self, items: Sequence[Item]) -> list[Verdict]:
        out = []
        for inst, resp in items:
            k = _key(inst, resp)
            if k not in self.cache:
                self.cache[k] = verifier_verdict(inst, resp)
            out.append(self.cache[k])
        return out


def verifier_verdict(inst: Instruction, response: str) -> Verdict:
    hard = [c for c in inst.constraints if not is_soft(c["id"])]
    if not hard:
        return Verdict(label="abstain", value=None, critique="", verifier=None)
    result = verify(response, hard)
    critique = ("The response misses these requirements:\n" + result.feedback) if not result.passed else \
        "The response meets every checkable requirement."
    return Verdict(votes=[], value=1.0 if result.passed else 0.0, label="yes" if result.passed else "no",
                   critique=critique, verifier=result.to_dict())


class HybridJudge:
    def __init__(self, backend: Backend, always_llm: bool = False, **llm_options: Any):
        self.llm = LLMJudge(backend, **llm_options)
        self.always_llm = always_llm
        self.cache: dict[str, Verdict] = {}

    def judge(self, items: Sequence[Item]) -> list[Verdict]:
        keys = [_key(inst, resp) for inst, resp in items]
        code: dict[int, Verdict] = {}  # item index -> the verifier's verdict, for items not cached yet
        ask: list[int] = []  # the items the LLM judges too
        for i, (inst, resp) in enumerate(items):
            if keys[i] in self.cache:
                continue
            code[i] = verifier_verdict(inst, resp)
            # a failed checkable constraint is already a "no": the LLM is asked only where code cannot decide
            if self.always_llm or (code[i].label != "no" and _needs_llm(inst)):
                ask.append(i)
        llm: dict[int, Verdict] = {}
        if ask:
            llm = dict(zip(ask, self.llm.judge([items[i] for i in ask], hybrid=True)))
        for i, k in enumerate(keys):
            if k not in self.cache:
                self.cache[k] = _combine(code[i], llm.get(i))
        return [self.cache[k] for k in keys]


def _needs_llm(inst: Instruction) -> bool:
    """Something only an LLM can judge: soft constraints, or no listed constraints at all."""
    return not inst.constraints or any(is_soft(c["id"]) for c in inst.constraints)


def _combine(code: Verdict, llm: Verdict | None) -> Verdict:
    """Conjunction of the code verdict and the LLM verdict; the critique names both."""
    if llm is None:
        return code
    if code.verifier is None:  # nothing checkable: the LLM alone
        return llm
    if code.label == "no":
        return Verdict(votes=llm.votes, value=0.0, label="no", critique=code.critique, verifier=code.verifier)
    critique = llm.critique if llm.label != "yes" else code.critique + "\n" + llm.critique
    return Verdict(votes=llm.votes, value=llm.value, label=llm.label, critique=critique.strip(), verifier=code.verifier)


def judge_from_config(cfg: JudgeConfig, backend: Backend | None, seed: int, kind: str | None = None) -> Judge:
    """The judge the `judge.*` settings describe, asking `backend` (None for the verifier judge). The loop,
    the verbs and the server all build their judge here; `kind` overrides `cfg.kind` (an LLM judge for soft
    constraints, say)."""
    kind = kind or cfg.kind
    if kind == "verifier":
        return make_judge("verifier")
    options = dict(n=cfg.n, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, resample=cfg.resample,
                   min_valid=cfg.min_valid, seed=seed)
    if kind == "hybrid":
        options["always_llm"] = cfg.always_llm
    return make_judge(kind, backend, **options)


def make_judge(kind: str, backend: Backend | None = None, **options: Any) -> Judge:
    """kind: "llm" | "verifier" | "hybrid"; llm and hybrid need the refiner's backend."""
    if kind == "verifier":
        return VerifierJudge()
    if kind not in ("llm", "hybrid"):
        raise ValueError(f"unknown judge {kind!r}; choose llm, verifier or hybrid")
    if backend is None:
        raise ValueError(f"the {kind} judge needs a backend for the refiner model")
    return LLMJudge(backend, **options) if kind == "llm" else HybridJudge(backend, **options)
