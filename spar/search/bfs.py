"""Breadth-first refinement search, as in SPaR (the paper's default).

Expand every frontier node `branch` times and finish the whole level; if
the best child's value > gate, it is the answer (a child cut by
max_new_tokens never is, unless search.accept_truncated, though it may
stay on the frontier); otherwise the best `select` children of the level
form the next frontier, up to `max_depth`.
With 3/2/3 that is at most 3 + 6 + 6 = 15 refinements.

Written as a generator: it yields the nodes to expand (with how many
children each) and receives their judged children, so the engine can run
many trees in one batch.
"""

from __future__ import annotations

from spar.config import SearchConfig
from spar.search.tree import Node, Outcome, Search, judged_right, ranked


def bfs(root: Node, cfg: SearchConfig, budget: list[int]) -> Search:
    best = root
    frontier = [root]
    for _ in range(cfg.max_depth):
        requests = []
        for node in frontier:
            k = min(cfg.branch, budget[0])
            if k:
                requests.append((node, k))
                budget[0] -= k
        if not requests:
            break
        level: list[Node] = yield requests
        top = ranked(level)
        if not top:
            break
        if top[0].score > best.score or best is root:
            best = top[0]
        right = [n for n in top if judged_right(n, cfg)]
        if right:
            return Outcome(True, right[0])
        # a truncated node may stay on the frontier: refining it can give a whole answer
        frontier = top[: cfg.select]
    return Outcome(False, best)
