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

On a backend that batches continuously (vLLM: its `concurrent` flag) a
level-wide call would wait for the level's slowest refinement; there each
tree grows in its own thread instead and its calls join the engine's
running batch, so no tree waits for another.

`Forest` is the same engine one step at a time, for callers whose trees
arrive and leave while others grow (`spar serve` runs the searches of all
its concurrent requests through one forest).

Determinism: for a fixed seed, backend and set of trees the result is
fixed; each step's sampling seed is `seed + step`, and a tree's steps are
numbered the same whether it grows in lockstep or in its own thread (vLLM
seeds every request by itself, so its samples do not depend on what else
is in the batch; only float rounding can). A tree is handed to
`on_done` as soon as it finishes, so a caller can write it at once.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from spar.backends.base import Backend, SamplingParams
from spar.config import SearchConfig
from spar.judge import Judge
from spar.parsing import REFINED_END, REFINED_START, parse_refinement
from spar.prompts import refine_chat
from spar.records import Instruction, Tree
from spar.search.bfs import bfs
from spar.search.dfs import dfs
from spar.search.tree import Node, Outcome, Search, to_record


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
    gen: Search
    pending: list[tuple[Node, int]]
    cfg: SearchConfig
    judged: int = 0


class Forest:
    """Trees that grow together, one batched step at a time; a tree may join or leave between steps.

    `search_trees` adds all its trees at once; `spar serve` adds a request's
    trees when the request arrives and drops them when its client leaves, so
    searches of different requests share every backend call. A tree may have
    its own settings (strategy, budget, sampling); refine requests with the
    same sampling settings go to the backend as one call.
    """

    def __init__(self, backend: Backend, judge: Judge, cfg: SearchConfig,
                 charge: Callable[[Any, int], None] | None = None):
        """`charge(key, tokens)` is told the tokens of every refinement written for tree `key`."""
        self.backend, self.judge, self.cfg, self.charge = backend, judge, cfg, charge
        self.runs: dict[Any, _Run] = {}  # in the order trees joined
        self.steps = 0
        self.generated = 0  # refinements written so far

    def __len__(self) -> int:
        return len(self.runs)

    def add(self, key: Any, root: Root, cfg: SearchConfig | None = None) -> Tree | None:
        """Start a tree under `key` (settings `cfg`, else the forest's); returns it if it is done at once."""
        cfg = cfg or self.cfg
        node = Node(id="0", parent=None, depth=0, response=root.response, critique=root.critique,
                    votes=root.votes or [], value=root.value, label="no")
        strategy = bfs if cfg.strategy == "bfs" else dfs
        run = _Run(root, [node], strategy(node, cfg, [cfg.max_refinements]), [], cfg)
        tree = _advance(run, None)
        if tree is None:
            self.runs[key] = run
        return tree

    def drop(self, key: Any) -> None:
        """Forget a tree (its request was cancelled); unknown keys are ignored."""
        self.runs.pop(key, None)

    def step(self) -> dict[Any, Tree]:
        """Expand every pending node of every tree, judge all new children in one judge call; returns
        {key: tree} of the trees that finished, in the order they joined."""
        requests = [(key, node, k) for key, run in self.runs.items() for node, k in run.pending]
        children = _refine(requests, self.runs, self.backend, self.steps, self.charge)
        self.generated += sum(len(c) for c in children.values())
        _judge(children, self.runs, self.judge)
        self.steps += 1
        finished = {}
        for key, run in list(self.runs.items()):
            tree = _advance(run, children.get(key, []))
            if tree is not None:
                finished[key] = tree
                del self.runs[key]
        return finished


def search_trees(
    roots: Sequence[Root],
    backend: Backend,
    judge: Judge,
    cfg: SearchConfig,
    on_done: Callable[[Tree], None] | None = None,
    progress: Callable[[Tree, int], None] | None = None,
) -> list[Tree]:
    """Grow one tree per root; returns the trees in input order.

    On a backend that batches continuously (`backend.concurrent`: vLLM) every tree grows in its own thread and
    sends its own calls, which join the engine's running batch: a tree judges its children and writes its next
    level while other trees' slowest refinements are still being decoded. Elsewhere (hf, which batches one call
    at a time) all trees advance in lockstep, one call per level for all of them.
    """
    if getattr(backend, "concurrent", False) and len(roots) > 1:
        return _grow_each_in_a_thread(roots, backend, judge, cfg, on_done, progress)
    forest = Forest(backend, judge, cfg)
    done: dict[int, Tree] = {}
    for i, r in enumerate(roots):
        tree = forest.add(i, r)
        if tree is not None:
            done[i] = tree
            if on_done:
                on_done(tree)
    while forest:
        for i, tree in forest.step().items():
            done[i] = tree
            if on_done:
                on_done(tree)
            if progress:
                progress(tree, forest.generated)
    return [done[i] for i in range(len(roots))]


MAX_THREADS = 256
"""Trees grown at once on a concurrent backend; more wait for a free thread."""


def _grow_each_in_a_thread(roots, backend, judge, cfg, on_done, progress) -> list[Tree]:
    """`search_trees` with one forest of one tree per thread. Each tree's steps are numbered from 0 as in
    lockstep, so it asks for the same seeds; the judge's cache is shared (its entries are per instruction)."""
    stop = threading.Event()

    def grow(i: int) -> tuple[Tree | None, int]:
        forest = Forest(backend, judge, cfg)
        tree = forest.add(i, roots[i])
        while tree is None and not stop.is_set():
            tree = forest.step().get(i)
        return tree, forest.generated

    done: dict[int, Tree] = {}
    generated = 0
    pool = ThreadPoolExecutor(max_workers=min(len(roots), MAX_THREADS), thread_name_prefix="spar-tree")
    futures = {pool.submit(grow, i): i for i in range(len(roots))}
    try:
        for future in as_completed(futures):
            tree, written = future.result()
            done[futures[future]] = tree
            generated += written
            if on_done:
                on_done(tree)
            if progress and written:  # as in lockstep: trees that wrote refinements
                progress(tree, generated)
    except BaseException:
        # An error or Ctrl-C reaches the caller at once, without waiting for the other trees' calls in flight:
        # they stop after their current step, or fail when the caller closes the backend.
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [done[i] for i in range(len(roots))]


def _advance(run: _Run, children: list[Node] | None) -> Tree | None:
    """Send the new children to the tree's generator; its record once it has finished."""
    try:
        run.pending = run.gen.send(children) if children is not None else next(run.gen)
    except StopIteration as stop:
        outcome: Outcome = stop.value
        return to_record(run.root.instruction.id, run.nodes, run.cfg.strategy, outcome, run.judged)
    return None


def _refine(requests: list[tuple[Any, Node, int]], runs: dict[Any, _Run], backend: Backend, step: int,
            charge: Callable[[Any, int], None] | None = None) -> dict[Any, list[Node]]:
    """One backend call per distinct sampling setting, most samples first (normally exactly one call)."""
    children: dict[Any, list[Node]] = {}
    settings = dict.fromkeys((k, *_setting(runs[key].cfg)) for key, _, k in requests)  # in order of appearance
    for setting in sorted(settings, key=lambda s: -s[0]):
        k, temperature, top_p, max_new_tokens, seed, prefill = setting
        group = [(key, node) for key, node, kk in requests if (kk, *_setting(runs[key].cfg)) == setting]
        chats = [refine_chat(runs[key].root.instruction.prompt, node.response, node.critique, prefill=prefill)
                 for key, node in group]
        params = SamplingParams(n=k, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                seed=seed + step)
        for (key, node), outs in zip(group, backend.generate(chats, params)):
            run = runs[key]
            for c in outs:
                if charge is not None:
                    charge(key, c.completion_tokens)
                siblings = sum(1 for n in run.nodes if n.parent == node.id)
                text = REFINED_START + "\n" + c.text if prefill else c.text
                parsed = parse_refinement(text)
                child = Node(id=f"{node.id}.{siblings}", parent=node.id, depth=node.depth + 1,
                             response=parsed.response if parsed else c.text,
                             reasoning=parsed.reasoning if parsed else "", failed=parsed is None,
                             value=None if parsed else 0.0, label="" if parsed else "invalid",
                             truncated=_cut_short(text, c.finish_reason))
                run.nodes.append(child)
                children.setdefault(key, []).append(child)
    return children


def _setting(c: SearchConfig) -> tuple:
    return c.temperature, c.top_p, c.max_new_tokens, c.seed, c.prefill


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


def _judge(children: dict[Any, list[Node]], runs: dict[Any, _Run], judge: Judge) -> None:
    todo = [(i, n) for i, nodes in children.items() for n in nodes if not n.failed]
    verdicts = judge.judge([(runs[i].root.instruction, n.response) for i, n in todo]) if todo else []
    for (i, node), v in zip(todo, verdicts):
        node.votes, node.value, node.label, node.critique = v.votes, v.value, v.label, v.critique
        runs[i].judged += 1
