"""The batched multi-tree search engine.

    trees = search_trees(roots, refiner_backend, judge, SearchConfig(strategy="bfs"))

Every tree is a BFS or DFS generator (bfs.py, dfs.py) that asks for nodes
to be expanded. The engine advances all trees together: at each step it
sends every pending refine request of every tree to the backend as one
batch (each node asks for `branch` samples), parses the refinements (and
marks those cut by max_new_tokens as `truncated`), then judges every new
child of every tree in one judge call (the judge's cache
is shared by all trees). The reference implementation instead runs one
request at a time per process.

Determinism: for a fixed seed, backend and set of trees the result is
fixed; each step's sampling seed is `seed + step`. A tree is handed to
`on_done` as soon as it finishes, so a caller can write it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from spar.backends.base import Backend, SamplingParams
from spar.parsing import REFINED_END, REFINED_START, parse_refinement
from spar.prompts import refine_chat
from spar.records import Instruction, Tree
from spar.search.bfs import bfs
from spar.search.dfs import dfs
from spar.search.tree import Node, Outcome, SearchConfig, to_record


@dataclass
class Root:
    """A negative to refine: the response, its critique and how it was judged."""

    instruction: Instruction
    response: str
    critique: str
    votes: list | None = None
    value: float | None = 0.0


@dataclass
class _Run:
    root: Root
    nodes: list[Node]
    gen: object
    pending: list  # [(node, k)]
    judged: int = 0


def search_trees(
    roots: Sequence[Root],
    backend: Backend,
    judge,
    cfg: SearchConfig,
    on_done: Callable[[Tree], None] | None = None,
    progress: Callable[[Tree, int], None] | None = None,
) -> list[Tree]:
    """Grow one tree per root, all in lockstep; returns the trees in input order."""
    strategy = bfs if cfg.strategy == "bfs" else dfs
    runs: list[_Run] = []
    done: dict[int, Tree] = {}
    for r in roots:
        root = Node(id="0", parent=None, depth=0, response=r.response, critique=r.critique, votes=r.votes or [],
                    value=r.value, label="no")
        gen = strategy(root, cfg, [cfg.max_refinements])
        runs.append(_Run(r, [root], gen, []))
    active = []
    for i, run in enumerate(runs):
        _advance(run, None, i, done, cfg, on_done)
        if i not in done:
            active.append(i)
    step = 0
    generated = 0
    while active:
        requests = [(i, node, k) for i in active for node, k in runs[i].pending]
        children = _refine(requests, runs, backend, cfg, step)
        generated += sum(len(c) for c in children.values())
        _judge(children, runs, judge)
        step += 1
        still = []
        for i in active:
            _advance(runs[i], children.get(i, []), i, done, cfg, on_done)
            if i in done:
                if progress:
                    progress(done[i], generated)
            else:
                still.append(i)
        active = still
    return [done[i] for i in range(len(runs))]


def _advance(run: _Run, children, i, done, cfg, on_done) -> None:
    try:
        run.pending = run.gen.send(children) if children is not None else next(run.gen)
    except StopIteration as stop:
        outcome: Outcome = stop.value
        tree = to_record(run.root.instruction.id, run.nodes, cfg.strategy, outcome, run.judged)
        done[i] = tree
        if on_done:
            on_done(tree)


def _refine(requests, runs, backend, cfg, step) -> dict[int, list[Node]]:
    """One backend call per distinct sample count (normally exactly one call)."""
    children: dict[int, list[Node]] = {}
    for k in sorted({k for _, _, k in requests}, reverse=True):
        group = [(i, node) for i, node, kk in requests if kk == k]
        chats = [refine_chat(runs[i].root.instruction.prompt, node.response, node.critique, prefill=cfg.prefill)
                 for i, node in group]
        params = SamplingParams(n=k, temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                                seed=cfg.seed + step)
        for (i, node), outs in zip(group, backend.generate(chats, params)):
            for c in outs:
                run = runs[i]
                siblings = sum(1 for n in run.nodes if n.parent == node.id)
                text = REFINED_START + "\n" + c.text if cfg.prefill else c.text
                parsed = parse_refinement(text)
                child = Node(id=f"{node.id}.{siblings}", parent=node.id, depth=node.depth + 1,
                             response=parsed.response if parsed else c.text,
                             reasoning=parsed.reasoning if parsed else "", failed=parsed is None,
                             value=None if parsed else 0.0, label="" if parsed else "invalid",
                             truncated=_cut_short(text, c.finish_reason))
                run.nodes.append(child)
                children.setdefault(i, []).append(child)
    return children


def _cut_short(text: str, finish_reason: str) -> bool:
    """Cut by max_new_tokens before the refinement's end marker.

    A prefilled completion continues the start marker, so `text` starts with
    it; a length cut after the end marker lost only trailing chatter, and
    the refinement itself is whole.
    """
    if finish_reason != "length":
        return False
    start = text.rfind(REFINED_START)
    return start < 0 or REFINED_END not in text[start:]


def _judge(children: dict[int, list[Node]], runs, judge) -> None:
    todo = [(i, n) for i, nodes in children.items() for n in nodes if not n.failed]
    verdicts = judge.judge([(runs[i].root.instruction, n.response) for i, n in todo]) if todo else []
    for (i, node), v in zip(todo, verdicts):
        node.votes, node.value, node.label, node.critique = v.votes, v.value, v.label, v.critique
        runs[i].judged += 1
