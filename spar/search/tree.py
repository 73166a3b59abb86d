"""Refinement trees: nodes, values, and the record a grown tree is written as.

A tree grows from one negative response (the root, with its judged
critique). Each child is a refinement of its parent written by the refiner
from the parent's critique, then judged with n votes: its value is
yes / (yes + no). A refinement that cannot be parsed becomes a node with
`failed` set and value 0; it is never expanded or chosen.

A refinement cut by the refiner's `max_new_tokens` before its end marker
has `truncated` set. It is judged like any other node and may be expanded
(its critique still says what is wrong, and refining it can give a whole
answer), but it is never judged right: it cannot end the search as its
answer, so it never becomes a chosen response, unless
`search.accept_truncated` allows it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Generator

from spar.config import SearchConfig
from spar.records import Tree


@dataclass
class Node:
    id: str
    parent: str | None
    depth: int
    response: str
    critique: str = ""
    reasoning: str = ""
    votes: list[dict[str, str]] = field(default_factory=list)
    value: float | None = None
    label: str = ""
    failed: bool = False  # the refinement could not be parsed
    truncated: bool = False  # cut by max_new_tokens before the refinement ended

    @property
    def score(self) -> float:
        return -1.0 if self.failed else (self.value or 0.0)


def ranked(nodes: list[Node]) -> list[Node]:
    """Best first; ties keep generation order; unparsed refinements never rank."""
    return sorted((n for n in nodes if not n.failed), key=lambda n: -n.score)


def judged_right(node: Node, cfg: SearchConfig) -> bool:
    """Value above the gate, and a whole answer (or a cut one, when the config accepts those)."""
    return node.score > cfg.gate and (cfg.accept_truncated or not node.truncated)


@dataclass
class Outcome:
    success: bool
    best: Node


# A strategy (bfs, dfs) is a generator: it yields [(node, k), ...] (expand node into k refinements), is sent
# the judged children, and returns its Outcome.
Search = Generator[list[tuple[Node, int]], list[Node], Outcome]


def to_record(instruction_id: str, nodes: list[Node], strategy: str, outcome: Outcome, judged: int) -> Tree:
    refinements = len(nodes) - 1
    return Tree(
        instruction_id=instruction_id,
        root=nodes[0].id,
        nodes=[asdict(n) for n in nodes],
        strategy=strategy,
        success=outcome.success,
        best=outcome.best.id,
        calls={"refine": refinements, "judge": judged},
    )


def path_to(tree: Tree, node_id: str) -> list[dict[str, Any]]:
    """Root-to-node chain of node dicts."""
    by_id = {n["id"]: n for n in tree.nodes}
    chain = []
    while node_id is not None:
        chain.append(by_id[node_id])
        node_id = by_id[node_id]["parent"]
    return chain[::-1]
