"""Step 3a: preference pairs for the actor's DPO.

    pairs = refinement_pairs(trees, instructions) + sampled_pairs(responses, judgments, negatives, instructions, seed)

* `refinement` (SPaR): chosen = the refinement a tree found right, rejected
  = the tree's root, the negative it was refined from. The two differ only
  where the instruction was missed.
* `sampled` (the "w/o refinement" ablation): chosen = an independent sample
  judged right, rejected = the negative, both of the same instruction.

A text cut by max_new_tokens is never a chosen response unless
`pairs.accept_truncated`: DPO would teach the actor to stop mid-answer.

Each pair records the token edit distance between chosen and rejected:
the paper's thesis, measured (refined pairs should sit much closer).
"""

from __future__ import annotations

import random
from typing import Sequence

from rapidfuzz.distance import Levenshtein

from spar.prompts import actor_chat
from spar.records import Instruction, Judgment, Negative, Pair, Response, Tree


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance over whitespace tokens (compiled: paper-scale pair sets take seconds, not an hour)."""
    return Levenshtein.distance(a.split(), b.split())


def refinement_pairs(trees: Sequence[Tree], instructions: dict[str, Instruction], accept_truncated: bool = False,
                     counts: dict[str, int] | None = None) -> list[Pair]:
    """One pair per successful tree; `counts["truncated"]` (when given) adds trees whose answer was cut short."""
    pairs, cut = [], 0
    for tree in trees:
        if not tree.success:
            continue
        nodes = {n["id"]: n for n in tree.nodes}
        best = nodes[tree.best]
        if best.get("truncated", False) and not accept_truncated:
            cut += 1
            continue
        chosen, rejected = best["response"], nodes[tree.root]["response"]
        pairs.append(Pair(tree.instruction_id, actor_chat(instructions[tree.instruction_id].prompt), chosen, rejected,
                          "refinement", edit_distance(chosen, rejected)))
    if counts is not None:
        counts["truncated"] = counts.get("truncated", 0) + cut
    return pairs


def sampled_pairs(responses: Sequence[Response], judgments: Sequence[Judgment], negatives: Sequence[Negative],
                  instructions: dict[str, Instruction], seed: int, accept_truncated: bool = False,
                  counts: dict[str, int] | None = None) -> list[Pair]:
    """Per negative, a response of the same instruction judged right (seeded pick among the whole ones).

    `counts["truncated"]` (when given) adds the right responses left out because they were cut short.
    """
    by_id = {r.id: r for r in responses}
    right: dict[str, list[str]] = {}
    for j in judgments:
        if j.label == "yes":
            right.setdefault(j.instruction_id, []).append(j.response_id)
    pairs, cut = [], 0
    for neg in negatives:
        ids = sorted(right.get(neg.instruction_id, []), key=lambda rid: by_id[rid].index)
        whole = [rid for rid in ids if accept_truncated or not getattr(by_id[rid], "truncated", False)]
        cut += len(ids) - len(whole)
        if not whole:
            continue
        chosen = by_id[random.Random(f"{seed}:{neg.instruction_id}:sampled").choice(whole)].text
        pairs.append(Pair(neg.instruction_id, actor_chat(instructions[neg.instruction_id].prompt), chosen, neg.text,
                          "sampled", edit_distance(chosen, neg.text)))
    if counts is not None:
        counts["truncated"] = counts.get("truncated", 0) + cut
    return pairs
