"""Step 1 of SPaR: negative data collection.

The actor samples k responses per instruction; the refiner judges each one
n times and the majority labels it; instructions with at least one response
judged wrong keep one such negative, picked with a seed per instruction.
Sampling and judging run in fixed chunks (rundir.run_chunked), so a crash
costs at most one chunk and a resumed stage gives the same records.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

from spar.backends.base import Backend, SamplingParams
from spar.config import SampleConfig
from spar.prompts import actor_chat
from spar.records import Instruction, Judgment, Negative, Response
from spar.selfplay.rundir import run_chunked


def sample_responses(instructions: Sequence[Instruction], actor: Backend, cfg: SampleConfig, seed: int, out: Path,
                     chunk: int, progress=None) -> Path:
    def process(items: list[Instruction], c: int) -> list[Response]:
        params = SamplingParams(n=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                                seed=seed * 100_003 + c)
        outs = actor.generate([actor_chat(i.prompt) for i in items], params)
        # a response cut by max_new_tokens is marked: later stages never take it as a chosen answer by default
        return [Response(i.id, j, c_.text, actor.name, truncated=c_.finish_reason == "length")
                for i, row in zip(items, outs) for j, c_ in enumerate(row)]

    return run_chunked(list(instructions), lambda i: i.id, out, chunk, process, lambda r: r["instruction_id"], progress)


def judge_responses(instructions: dict[str, Instruction], responses: Sequence[Response], judge, out: Path, chunk: int,
                    progress=None) -> Path:
    """Judgments for every response; chunks hold whole instructions (all k responses of each)."""
    by_inst: dict[str, list[Response]] = {}
    for r in responses:
        by_inst.setdefault(r.instruction_id, []).append(r)
    groups = list(by_inst.items())

    def process(items: list[tuple[str, list[Response]]], c: int) -> list[Judgment]:
        flat = [r for _, rs in items for r in rs]
        verdicts = judge.judge([(instructions[r.instruction_id], r.text) for r in flat])
        return [Judgment(r.instruction_id, r.id, v.votes, v.value, v.label, v.verifier, v.critique) for r, v in zip(flat, verdicts)]

    return run_chunked(groups, lambda g: g[0], out, chunk, process, lambda j: j["instruction_id"], progress)


def select_negatives(responses: Sequence[Response], judgments: Sequence[Judgment], seed: int) -> list[Negative]:
    """One response judged wrong per instruction that has any, chosen with a per-instruction seed.

    The pick depends only on the seed and the set of judgments, not on
    their order in the file (a resumed stage may have written chunks in
    another order). A response cut by max_new_tokens can be a negative:
    as the rejected side of a pair it is a fair example of what not to do.
    """
    text = {r.id: r.text for r in responses}
    index = {r.id: r.index for r in responses}
    wrong: dict[str, list[Judgment]] = {}
    for j in judgments:
        if j.label == "no":
            wrong.setdefault(j.instruction_id, []).append(j)
    negatives = []
    for iid in sorted(wrong):
        candidates = sorted(wrong[iid], key=lambda j: index[j.response_id])
        j = random.Random(f"{seed}:{iid}").choice(candidates)
        negatives.append(Negative(iid, j.response_id, text[j.response_id], j.critique, j.votes, j.value))
    return negatives
