"""Step 3a: preference pairs for the actor's DPO.

* `refinement` (SPaR): chosen = the refinement a tree found right, rejected
  = the tree's root, the negative it was refined from. The two differ only
  where the instruction was missed.
* `sampled` (the "w/o refinement" ablation): chosen = an independent sample
  judged right, rejected = the negative, both of the same instruction.

Each pair records the token edit distance between chosen and rejected:
the paper's thesis, measured (refined pairs should sit much closer).
"""

from __future__ import annotations

import random
from typing import Sequence

from spar.prompts import actor_chat
from spar.records import Instruction, Judgment, Negative, Pair, Response, Tree


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance over whitespace tokens."""
    x, y = a.split(), b.split()
    if len(x) < len(y):
        x, y = y, x
    prev = list(range(len(y) + 1))
    for i, tx in enumerate(x, start=1):
        cur = [i]
        for j, ty in enumerate(y, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (tx != ty)))
        prev = cur
    return prev[-1]


def refinement_pairs(trees: Sequence[Tree], instructions: dict[str, Instruction]) -> list[Pair]:
    pairs = []
    for tree in trees:
        if not tree.success:
            continue
        nodes = {n["id"]: n for n in tree.nodes}
        chosen, rejected = nodes[tree.best]["response"], nodes[tree.root]["response"]
        pairs.append(Pair(tree.instruction_id, actor_chat(instructions[tree.instruction_id].prompt), chosen, rejected,
                          "refinement", edit_distance(chosen, rejected)))
    return pairs


def sampled_pairs(responses: Sequence[Response], judgments: Sequence[Judgment], negatives: Sequence[Negative],
                  instructions: dict[str, Instruction], seed: int) -> list[Pair]:
    text = {r.id: r.text for r in responses}
    right: dict[str, list[str]] = {}
    for j in judgments:
        if j.label == "yes":
            right.setdefault(j.instruction_id, []).append(j.response_id)
    pairs = []
    for neg in negatives:
        if neg.instruction_id not in right:
            continue
        chosen = text[random.Random(f"{seed}:{neg.instruction_id}:sampled").choice(right[neg.instruction_id])]
        pairs.append(Pair(neg.instruction_id, actor_chat(instructions[neg.instruction_id].prompt), chosen, neg.text,
                          "sampled", edit_distance(chosen, neg.text)))
    return pairs
