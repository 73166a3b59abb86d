"""Inference-time tree search: answer with a budget of generated responses (the paper's Figure 5).

    answers = decode(instructions, actor, judge, refiner, strategy="bfs", budget=8)

* greedy - one greedy answer (budget 1).
* best_of_n - `budget` sampled answers; the judge's highest value wins,
  ties to the first.
* bfs / dfs - the greedy answer is judged; if judged wrong, the refiner
  grows a tree from it until one refinement is judged right or the budget
  (greedy answer + refinements) is spent; the best node is the answer if
  it is judged better than the greedy answer (a tie keeps the greedy one).

All instructions go through each step together, so every backend call is
one batch. Works with every judge (llm, verifier, hybrid).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from spar.backends.base import Backend, SamplingParams
from spar.config import SearchConfig
from spar.errors import UserError
from spar.judge import Judge
from spar.prompts import actor_chat
from spar.records import Instruction
from spar.search.engine import Root, search_trees

STRATEGIES = ("greedy", "best_of_n", "bfs", "dfs")


@dataclass
class Decoded:
    text: str
    value: float | None
    generated: int  # responses generated for this answer (actor + refiner)


def decode(
    instructions: Sequence[Instruction],
    actor: Backend,
    judge: Judge | None = None,
    refiner: Backend | None = None,
    strategy: str = "greedy",
    budget: int = 1,
    max_new_tokens: int = 512,
    temperature: float = 0.9,
    search: SearchConfig | None = None,
    seed: int = 0,
) -> list[Decoded]:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if strategy != "greedy" and judge is None:
        raise ValueError(f"strategy {strategy!r} needs a judge (llm, verifier or hybrid)")
    if budget < 1:
        raise UserError(f"budget={budget}: at least one generated response")
    chats = [actor_chat(i.prompt) for i in instructions]
    if strategy == "best_of_n":
        assert judge is not None  # checked above; says so to a type checker
        params = SamplingParams(n=budget, temperature=temperature, top_p=0.9, max_new_tokens=max_new_tokens, seed=seed)
        samples = [[c.text for c in row] for row in actor.generate(chats, params)]
        flat = [(inst, s) for inst, row in zip(instructions, samples) for s in row]
        values = [v.value or 0.0 for v in judge.judge(flat)]
        out = []
        for k, row in enumerate(samples):
            vals = values[k * budget : (k + 1) * budget]
            pick = max(range(budget), key=lambda j: (vals[j], -j))
            out.append(Decoded(row[pick], vals[pick], budget))
        return out
    greedy = [row[0].text for row in actor.generate(chats, SamplingParams(max_new_tokens=max_new_tokens))]
    if strategy == "greedy":
        return [Decoded(t, None, 1) for t in greedy]
    assert judge is not None  # checked above
    verdicts = judge.judge(list(zip(instructions, greedy)))
    out = [Decoded(t, v.value, 1) for t, v in zip(greedy, verdicts)]
    wrong = [k for k, v in enumerate(verdicts) if v.label != "yes"]
    if not wrong or budget == 1:
        return out
    cfg = replace(search or SearchConfig(), strategy=strategy, max_refinements=budget - 1,
                  max_depth=max(budget, (search or SearchConfig()).max_depth))
    roots = [Root(instructions[k], greedy[k], verdicts[k].critique, verdicts[k].votes, verdicts[k].value)
             for k in wrong]
    trees = search_trees(roots, refiner or actor, judge, cfg)
    for k, tree in zip(wrong, trees):
        best = next(n for n in tree.nodes if n["id"] == tree.best)
        used = 1 + tree.calls["refine"]
        # a refinement replaces the greedy answer only when judged better: a tie keeps the answer the actor wrote
        if best["id"] != tree.root and (best["value"] or 0.0) > (out[k].value or 0.0):
            out[k] = Decoded(best["response"], best["value"], used)
        else:  # no refinement beat the greedy answer
            out[k] = Decoded(out[k].text, out[k].value, used)
    return out
