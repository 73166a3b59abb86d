"""Judges: does a response follow its instruction?

    judge = make_judge("hybrid", backend, n=5)
    verdicts = judge.judge([(instruction, response_text), ...])

* `LLMJudge` - the paper's judge: the refiner answers the judge prompt n
  times (one batched backend call for all items) and the majority labels
  the response; value = yes / (yes + no), invalid votes ignored.
  Ties and all-invalid: the undecided items get another n votes, up to
  `resample` more rounds (one batched call per round); still undecided,
  the judge abstains (label "abstain"; the value stays yes/(yes+no), or
  None without a valid vote). The critique kept is the first vote that
  agrees with the majority.
* `VerifierJudge` - code only: the exact verdict on the instruction's
  verifiable constraints, with a critique listing every failure.
* `HybridJudge` - verifiable constraints by code, the rest (soft
  constraints, or an instruction without listed constraints) by the LLM,
  told which requirements code already checked. The verdict is the
  conjunction: a failed verifiable constraint is a "no" without asking the
  LLM (unless `always_llm`, which collects LLM votes for RFT anyway).

Every judge caches verdicts by (instruction, response text): no text is
judged twice in a run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from spar.backends.base import Backend, SamplingParams
from spar.constraints import get, is_soft, verify
from spar.parsing import parse_verdict
from spar.prompts import judge_chat
from spar.records import Instruction

Item = tuple[Instruction, str]


@dataclass
class Verdict:
    votes: list[dict[str, str]] = field(default_factory=list)  # {verdict, critique}
    value: float | None = None
    label: str = "abstain"  # "yes" | "no" | "abstain"
    critique: str = ""
    verifier: dict[str, Any] | None = None


def _key(instruction: Instruction, response: str) -> str:
    return json.dumps([instruction.prompt, instruction.constraints, response], sort_keys=True)


def tally(votes: list[dict[str, str]]) -> tuple[float | None, str, str]:
    """(value, label, critique) from votes; label "abstain" on a tie or no valid vote."""
    yes = sum(v["verdict"] == "yes" for v in votes)
    no = sum(v["verdict"] == "no" for v in votes)
    value = yes / (yes + no) if yes + no else None
    label = "yes" if yes > no else "no" if no > yes else "abstain"
    critique = next((v["critique"] for v in votes if v["verdict"] == label), "")
    return value, label, critique


class LLMJudge:
    def __init__(self, backend: Backend, n: int = 5, temperature: float = 0.7, top_p: float = 1.0,
                 max_new_tokens: int = 256, seed: int = 0, resample: int = 2):
        self.backend, self.n, self.resample = backend, n, resample
        self.params = SamplingParams(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
        self.cache: dict[str, Verdict] = {}
        self.calls = 0  # backend calls made, for tests and benchmarks

    def judge(self, items: Sequence[Item], checked: Sequence[list[str] | None] | None = None) -> list[Verdict]:
        """Verdicts in input order; `checked[i]` lists requirements code verified (hybrid)."""
        checked = list(checked) if checked is not None else [None] * len(items)
        keys = [_key(inst, resp) for inst, resp in items]
        todo: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in self.cache and k not in todo:
                todo[k] = i
        votes: dict[str, list[dict[str, str]]] = {k: [] for k in todo}
        undecided = list(todo)
        for round_ in range(1 + self.resample):
            if not undecided:
                break
            chats = [judge_chat(items[todo[k]][0].prompt, items[todo[k]][1], checked[todo[k]]) for k in undecided]
            seed = None if self.params.seed is None else self.params.seed + 7919 * round_
            outs = self.backend.generate(chats, self.params.with_(seed=seed))
            self.calls += 1
            for k, completions in zip(undecided, outs):
                votes[k] += [{"verdict": parse_verdict(c.text), "critique": c.text} for c in completions]
            undecided = [k for k in undecided if tally(votes[k])[1] == "abstain"]
        for k in todo:
            value, label, critique = tally(votes[k])
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
    def __init__(self, backend: Backend, always_llm: bool = False, **llm_options):
        self.llm = LLMJudge(backend, **llm_options)
        self.always_llm = always_llm
        self.cache: dict[str, Verdict] = {}

    def judge(self, items: Sequence[Item]) -> list[Verdict]:
        keys = [_key(inst, resp) for inst, resp in items]
        code = [verifier_verdict(inst, resp) for inst, resp in items]
        ask = [i for i, (inst, _) in enumerate(items) if keys[i] not in self.cache and (
            self.always_llm or code[i].label != "no" and (not inst.constraints or any(is_soft(c["id"]) for c in inst.constraints)))]
        checked = [_described_hard(items[i][0]) for i in ask]
        llm = dict(zip(ask, self.llm.judge([items[i] for i in ask], checked))) if ask else {}
        out = []
        for i, k in enumerate(keys):
            if k not in self.cache:
                self.cache[k] = _combine(code[i], llm.get(i))
            out.append(self.cache[k])
        return out


def _described_hard(inst: Instruction) -> list[str]:
    return [get(c["id"]).describe(c.get("kwargs") or {}) for c in inst.constraints if not is_soft(c["id"])]


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


def make_judge(kind: str, backend: Backend | None = None, **options):
    """kind: "llm" | "verifier" | "hybrid"; llm and hybrid need the refiner's backend."""
    if kind == "verifier":
        return VerifierJudge()
    if kind not in ("llm", "hybrid"):
        raise ValueError(f"unknown judge {kind!r}; choose llm, verifier or hybrid")
    if backend is None:
        raise ValueError(f"the {kind} judge needs a backend for the refiner model")
    return LLMJudge(backend, **options) if kind == "llm" else HybridJudge(backend, **options)
