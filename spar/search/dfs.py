"""Depth-first refinement search, as in SPaR.

Expand a node `branch` times; if the best child's value > gate, it is the
answer (a child cut by max_new_tokens never is, unless
search.accept_truncated, though it may still be recursed into); otherwise
recurse into the best `select` children in order, down to `max_depth`.
The first success anywhere ends the search.

A generator like bfs(): it yields nodes to expand and receives their judged
children.
"""

from __future__ import annotations

from typing import Generator

from spar.config import SearchConfig
from spar.search.tree import Node, Outcome, Search, judged_right, ranked


def dfs(root: Node, cfg: SearchConfig, budget: list[int]) -> Search:
    found: list[Node] = []
    outcome = yield from _visit(root, cfg, budget, found)
    if outcome is not None:
        return outcome
    best = ranked(found)
    return Outcome(False, best[0] if best else root)


def _visit(node: Node, cfg: SearchConfig, budget: list[int],
           found: list[Node]) -> Generator[list[tuple[Node, int]], list[Node], Outcome | None]:
    k = min(cfg.branch, budget[0])
    if k == 0:
        return None
    budget[0] -= k
    children: list[Node] = yield [(node, k)]
    found.extend(children)
    top = ranked(children)
    right = [n for n in top if judged_right(n, cfg)]
    if right:
        return Outcome(True, right[0])
    if node.depth + 1 >= cfg.max_depth:
        return None
    for child in top[: cfg.select]:
        outcome = yield from _visit(child, cfg, budget, found)
        if outcome is not None:
            return outcome
    return None
