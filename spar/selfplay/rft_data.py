"""Step 3b: the refiner's training data (RFT): its own outputs that proved right.

* refine: the refinement that a tree found right, as the refine chat the
  refiner answered (its parent's response and critique in, the refined
  response out). Intermediate refinements on the way were judged wrong and
  are not trained on;
* judge (tree nodes): the majority critique of nodes with 0.5 < V < 1
  (positive) and 0 < V < 0.5 (negative) - judgments that needed several
  votes to settle;
* judge (judge stage): majority critiques of responses whose votes were
  not unanimous.

Chats are rebuilt exactly as the refiner saw them (the hybrid judge's note
on requirements code already checked; the prefilled rewrite request when
search.prefill is on), so training teaches the turn it will be asked for.
With the verifier or hybrid judge a critique counts only when its verdict
agrees with the verifier's; otherwise the majority is trusted, as in the
paper. Caps keep a seeded sample.
"""

from __future__ import annotations

import random
from typing import Sequence

from spar.config import RFTDataConfig
from spar.parsing import REFINED_END, REFINED_START
from spar.prompts import judge_chat, refine_chat
from spar.records import Instruction, Judgment, Response, RFTExample, Tree
from spar.search.tree import path_to


def _majority_critique(votes: list[dict]) -> tuple[str, str] | None:
    yes = sum(v["verdict"] == "yes" for v in votes)
    no = sum(v["verdict"] == "no" for v in votes)
    if yes == no:
        return None
    label = "yes" if yes > no else "no"
    return label, next(v["critique"] for v in votes if v["verdict"] == label)


def _trusted(label: str, verifier: dict | None, use_verifier: bool) -> bool:
    return not use_verifier or verifier is None or (label == "yes") == verifier["passed"]


def judge_example(inst: Instruction, response: str, critique: str, source: str, hybrid: bool) -> RFTExample:
    checked = _described_hard(inst) if hybrid else None
    return RFTExample(judge_chat(inst.prompt, response, checked) + [{"role": "assistant", "content": critique}],
                      "judge", source)


def refine_example(inst: Instruction, parent: dict, child: dict, prefill: bool) -> RFTExample:
    chat = refine_chat(inst.prompt, parent["response"], parent["critique"], prefill=prefill)
    if prefill:  # the refiner continued our "<refined>" start: train on the whole turn it stands for
        chat, answer = chat[:-1], f"{REFINED_START}\n{child['response']}\n{REFINED_END}"
    else:
        answer = f"{child['reasoning']}\n{REFINED_START}\n{child['response']}\n{REFINED_END}".strip()
    return RFTExample(chat + [{"role": "assistant", "content": answer}], "refine", "tree")


def build_rft(trees: Sequence[Tree], judgments: Sequence[Judgment], responses: Sequence[Response],
              instructions: dict[str, Instruction], cfg: RFTDataConfig, judge_kind: str, seed: int,
              prefill: bool = False) -> list[RFTExample]:
    """RFT examples of one iteration: refine chats first, then judge chats; each kind capped by `cfg`."""
    from spar.constraints import is_soft, verify

    use_verifier, hybrid = judge_kind != "llm", judge_kind == "hybrid"
    text = {r.id: r.text for r in responses}
    refine, judge = [], []
    for tree in trees:
        inst = instructions[tree.instruction_id]
        if tree.success:
            parent, child = path_to(tree, tree.best)[-2:]
            refine.append(refine_example(inst, parent, child, prefill))
        hard = [c for c in inst.constraints if not is_soft(c["id"])]
        for node in tree.nodes[1:]:
            v = node["value"]
            if node["failed"] or v is None or not (0 < v < 0.5 or 0.5 < v < 1):
                continue
            majority = _majority_critique(node["votes"])
            verifier = verify(node["response"], hard).to_dict() if hard else None
            if majority and _trusted(majority[0], verifier, use_verifier):
                judge.append(judge_example(inst, node["response"], majority[1], "tree-node", hybrid))
    for j in judgments:
        verdicts = {v["verdict"] for v in j.votes if v["verdict"] != "invalid"}
        if len(verdicts) < 2:
            continue  # unanimous (or no valid vote): nothing the refiner had to work out
        majority = _majority_critique(j.votes)
        if majority and _trusted(majority[0], j.verifier, use_verifier):
            judge.append(judge_example(instructions[j.instruction_id], text[j.response_id], majority[1], "judge-stage",
                                       hybrid))
    rng = random.Random(seed)
    if len(refine) > cfg.max_refine:
        refine = rng.sample(refine, cfg.max_refine)
    if len(judge) > cfg.max_judge:
        judge = rng.sample(judge, cfg.max_judge)
    return refine + judge


def _described_hard(inst: Instruction) -> list[str] | None:
    """What the hybrid judge tells the LLM code already checked (spar.judge does the same)."""
    from spar.constraints import get, is_soft

    described = [get(c["id"]).describe(c.get("kwargs") or {}) for c in inst.constraints if not is_soft(c["id"])]
    return described or None
