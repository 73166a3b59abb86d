"""The loop's generating stages, chunked and resumable: step 1 of SPaR (negative data collection) and the
tree search of step 2.

The actor samples k responses per instruction; the refiner judges each one
n times and the majority labels it; instructions with at least one response
judged wrong keep one such negative, picked with a seed per instruction;
each negative grows a refinement tree. Sampling, judging and search run in
fixed chunks (rundir.run_chunked), so a crash costs at most one chunk and a
resumed stage gives the same records. The verbs `spar generate`,
`spar judge` and `spar search` call these same functions (`append=True`).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from spar.backends.base import Backend, SamplingParams
from spar.config import SampleConfig, SearchConfig
from spar.judge import Judge
from spar.prompts import actor_chat
from spar.records import Instruction, Judgment, Negative, Response, Tree
from spar.selfplay.rundir import run_chunked


def sample_chunk_seed(seed: int, c: int) -> int:
    """The sampling seed of chunk c: every chunk samples differently, and the same way on every rerun."""
    return seed * 100_003 + c


def sample_responses(instructions: Sequence[Instruction], actor: Backend, cfg: SampleConfig, seed: int, out: Path,
                     chunk: int, progress=None) -> Path:
    """cfg.k responses per instruction (the actor's chat of its prompt)."""
    params = SamplingParams(n=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                            seed=seed, repetition_penalty=cfg.repetition_penalty)
    return sample_chats([(i.id, actor_chat(i.prompt)) for i in instructions], actor, params, out, chunk, progress)


def sample_chats(items: Sequence[tuple[str, list[dict]]], backend: Backend, params: SamplingParams, out: Path,
                 chunk: int, progress=None, append: bool = False) -> Path:
    """`params.n` Response records per (id, chat); chunk c samples with seed `sample_chunk_seed(params.seed, c)`."""
    def process(batch: list[tuple[str, list[dict]]], c: int) -> list[Response]:
        seed = None if params.seed is None else sample_chunk_seed(params.seed, c)
        outs = backend.generate([chat for _, chat in batch], params.with_(seed=seed))
        # a response cut by max_new_tokens is marked: later stages never take it as a chosen answer by default
        return [Response(key, j, c_.text, backend.name, truncated=c_.finish_reason == "length")
                for (key, _), row in zip(batch, outs) for j, c_ in enumerate(row)]

    return run_chunked(list(items), lambda x: x[0], out, chunk, process, lambda r: r["instruction_id"], progress,
                       append=append)


def judge_responses(instructions: dict[str, Instruction], responses: Sequence[Response], judge: Judge, out: Path,
                    chunk: int, progress=None, per_response: bool = False, append: bool = False) -> Path:
    """A Judgment for every response, one batched judge call per chunk. Chunks hold `chunk` whole instructions
    (all k responses of each), or with `per_response` `chunk` responses (a rerun then resumes per response)."""
    by: dict[str, list[Response]] = {}
    for r in responses:
        by.setdefault(r.id if per_response else r.instruction_id, []).append(r)
    groups = list(by.items())

    def process(items: list[tuple[str, list[Response]]], c: int) -> list[Judgment]:
        flat = [r for _, rs in items for r in rs]
        verdicts = judge.judge([(instructions[r.instruction_id], r.text) for r in flat])
        return [Judgment(r.instruction_id, r.id, v.votes, v.value, v.label, v.verifier, v.critique)
                for r, v in zip(flat, verdicts)]

    field = "response_id" if per_response else "instruction_id"
    return run_chunked(groups, lambda g: g[0], out, chunk, process, lambda j: j[field], progress, append=append)


def search_negatives(negatives: Sequence[Negative], instructions: dict[str, Instruction], refiner: Backend, judge,
                     cfg: SearchConfig, seed: int, out: Path, chunk: int, progress=None, append: bool = False) -> Path:
    """One refinement tree per negative, the trees of a chunk grown together; chunk c searches with seed
    `cfg.seed + seed + c`."""
    from spar.search.engine import Root, search_trees

    def grow(items: list[Negative], c: int) -> list[Tree]:
        roots = [Root(instructions[n.instruction_id], n.text, n.critique, n.votes, n.value) for n in items]
        return search_trees(roots, refiner, judge, replace(cfg, seed=cfg.seed + seed + c))

    return run_chunked(list(negatives), lambda n: n.instruction_id, out, chunk, grow, lambda r: r["instruction_id"],
                       progress, append=append)


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
