"""Step 3b: the refiner's training data (RFT): its own outputs that proved right.

    examples = build_rft(trees, judgments, responses, instructions, cfg.rft_data, cfg.judge.kind, seed,
                         prefill=cfg.search.prefill, counts=counts)

Three kinds of chats, as the paper's reference code builds them:

* refine: the step of a successful tree that produced the answer judged
  right: the parent's response and critique in, the refinement out
  (`rft_data.refine_steps: last`). With `path`, every step on the
  root-to-best chain whose refinement was itself judged right; a step
  whose refinement was judged wrong is never trained on;
* judge (tree nodes): per tree, one node with 0.5 < V < 1 (positive) and
  one with 0 < V < 0.5 (negative), picked with a seed, with a critique
  that agrees with its majority: judgments that needed several votes;
* judge (judge stage): a majority critique of a response whose votes were
  split (both yes and no, no tie).

Each chat is the one the refiner answered: the refine request as the search
engine sent it (with `search.prefill`, the assistant turn is the prefilled
start marker followed by what the refiner had to write after it), and the
judge request as the judge sent it (with the hybrid judge, the same note on
what code found). With the verifier or hybrid judge a critique counts only
when its verdict agrees with the verifier's; with the LLM judge the majority
is trusted, as in the paper. A refinement or critique cut by max_new_tokens
is never a target unless `rft_data.accept_truncated`.

Chats asking the same thing are kept once (the first, in the order above),
then each kind is capped by a seeded sample (the reference's caps:
4000 refinements, 1500 / 1000 positive / negative tree critiques, 2500 /
500 "yes" / "no" judge-stage critiques).
"""

from __future__ import annotations

import json
import random
from typing import Sequence

from spar.config import RFTDataConfig
from spar.parsing import REFINED_END, REFINED_START
from spar.prompts import refine_chat
from spar.records import Instruction, Judgment, Response, RFTExample, Tree
from spar.search.tree import path_to


def _trusted(label: str, verifier: dict | None, use_verifier: bool) -> bool:
    return not use_verifier or verifier is None or (label == "yes") == verifier["passed"]


def judge_example(inst: Instruction, response: str, critique: str, label: str, source: str,
                  hybrid: bool) -> RFTExample:
    """The judge request exactly as the judge sent it, answered by `critique`."""
    from spar.judge import judge_request

    return RFTExample(judge_request(inst, response, hybrid) + [{"role": "assistant", "content": critique}],
                      "judge", source, label)


def refine_example(inst: Instruction, parent: dict, child: dict, prefill: bool) -> RFTExample:
    """The refine request as the search engine sent it, answered by the refinement `child`.

    With `prefill` the request ends with the assistant turn the engine
    started (the start marker); the refiner continued that turn, so the
    example's last turn is the prefilled start followed by what it had to
    write after it: the refined response and the end marker.
    """
    chat = refine_chat(inst.prompt, parent["response"], parent["critique"], prefill=prefill)
    if prefill:
        started = chat.pop()["content"]
        answer = f"{started}{child['response']}\n{REFINED_END}"
    else:
        answer = f"{child['reasoning']}\n{REFINED_START}\n{child['response']}\n{REFINED_END}".strip()
    return RFTExample(chat + [{"role": "assistant", "content": answer}], "refine", "tree")


def _refine_steps(tree: Tree, steps: str) -> list[tuple[dict, dict]]:
    """(parent, child) steps of a successful tree to train on, before the right/truncated filter."""
    if not tree.success or tree.best is None:
        return []
    chain = path_to(tree, tree.best)
    pairs = list(zip(chain, chain[1:]))
    return pairs[-1:] if steps == "last" else pairs


def build_rft(trees: Sequence[Tree], judgments: Sequence[Judgment], responses: Sequence[Response],
              instructions: dict[str, Instruction], cfg: RFTDataConfig, judge_kind: str, seed: int,
              prefill: bool = False, counts: dict[str, int] | None = None) -> list[RFTExample]:
    """RFT examples of one iteration: refine chats first, then judge chats (tree nodes, then judge stage).

    `counts`, when given, is filled with how many candidates were left out:
    "truncated" (a refinement or every agreeing critique cut by
    max_new_tokens), "duplicates" and "capped".
    """
    from spar.judge import agreeing_critique, tally, verifier_verdict

    use_verifier, hybrid = judge_kind != "llm", judge_kind == "hybrid"
    keep_cut = cfg.accept_truncated
    left_out = {"truncated": 0, "duplicates": 0, "capped": 0}
    text = {r.id: r.text for r in responses}
    pools: dict[str, list[RFTExample]] = {"refine": [], "tree_yes": [], "tree_no": [], "stage_no": [], "stage_yes": []}

    def critique_of(votes: list[dict], verdict: str, verifier: dict | None) -> tuple[str, str] | None:
        """A critique from the majority of `votes`, if that majority is the judge's `verdict` (not an abstention,
        e.g. too few valid votes) and, with a verifier-grounded judge, agrees with code."""
        if tally(votes)[1] != verdict or not _trusted(verdict, verifier, use_verifier):
            return None
        critique = agreeing_critique(votes, verdict, whole_only=not keep_cut)
        if critique is None:  # every agreeing critique was cut by max_new_tokens
            left_out["truncated"] += 1
            return None
        return verdict, critique

    for tree in trees:
        inst = instructions[tree.instruction_id]
        for parent, child in _refine_steps(tree, cfg.refine_steps):
            if child.get("failed") or child.get("label") != "yes":
                continue  # judged wrong (or never judged): not an output that proved right
            if child.get("truncated", False) and not keep_cut:
                left_out["truncated"] += 1
                continue
            pools["refine"].append(refine_example(inst, parent, child, prefill))
        found: dict[str, list[RFTExample]] = {"yes": [], "no": []}
        for node in tree.nodes:
            v = node["value"]
            if node["parent"] is None or node.get("failed") or v is None or not (0 < v < 0.5 or 0.5 < v < 1):
                continue
            polarity = "yes" if v > 0.5 else "no"
            if node.get("label") != polarity:
                continue  # V and the verdict disagree: a record not written by the search
            verifier = verifier_verdict(inst, node["response"]).verifier  # None: nothing checkable by code
            majority = critique_of(node["votes"], polarity, verifier)
            if majority:
                found[polarity].append(judge_example(inst, node["response"], majority[1], polarity, "tree-node",
                                                     hybrid))
        for label in ("yes", "no"):  # one positive and one negative node per tree, as the reference
            if found[label]:
                rng = random.Random(f"{seed}:{tree.instruction_id}:{label}")
                pools[f"tree_{label}"].append(rng.choice(found[label]))

    for j in judgments:
        verdicts = {v["verdict"] for v in j.votes if v["verdict"] != "invalid"}
        if len(verdicts) < 2:
            continue  # unanimous (or no valid vote): nothing the refiner had to work out
        majority = critique_of(j.votes, j.label, j.verifier)
        if majority:
            pools[f"stage_{majority[0]}"].append(judge_example(instructions[j.instruction_id], text[j.response_id],
                                                               majority[1], majority[0], "judge-stage", hybrid))

    seen: set[str] = set()
    for name, pool in pools.items():  # the same request twice: keep the first
        unique = []
        for e in pool:
            key = json.dumps(e.messages[:-1], sort_keys=True)
            if key in seen:
                left_out["duplicates"] += 1
            else:
                seen.add(key)
                unique.append(e)
        pools[name] = unique

    caps = {"refine": cfg.max_refine, "tree_yes": cfg.max_tree_yes, "tree_no": cfg.max_tree_no,
            "stage_yes": cfg.max_stage_yes, "stage_no": cfg.max_stage_no}
    kept = {name: _sample(pool, caps[name], f"{seed}:rft:{name}") for name, pool in pools.items()}
    judge = [e for name in ("tree_yes", "tree_no", "stage_yes", "stage_no") for e in kept[name]]
    if cfg.max_judge is not None:
        judge = _sample(judge, cfg.max_judge, f"{seed}:rft:judge")
    examples = kept["refine"] + judge
    left_out["capped"] = sum(len(p) for p in pools.values()) - len(examples)
    if counts is not None:
        counts.update(left_out)
    return examples


def _sample(pool: list[RFTExample], cap: int, seed: str) -> list[RFTExample]:
    """At most `cap` examples, a seeded sample kept in the pool's order."""
    if len(pool) <= cap:
        return pool
    chosen = sorted(random.Random(seed).sample(range(len(pool)), cap))
    return [pool[i] for i in chosen]
