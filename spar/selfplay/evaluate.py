"""Evaluation inside the loop: held-out synthesized instructions (checked by code) and IFEval.

Held-out instructions never enter training (split "heldout"); the actor
answers greedily and the verifier scores every verifiable constraint:
prompt-level accuracy (all of an instruction's constraints met) and
instruction-level accuracy (pooled over constraints), overall and in the
three scores that say what generalises:

  heldout_seen_*     instructions of kinds training has (in phrasings and seed tasks it has not)
  heldout_unseen_*   instructions holding a kind training never saw (data.heldout_kinds); the
                     instruction level pools only those kinds' constraints
  heldout_soft       share of soft constraints (style, sentiment, situation, genre) the judge finds met,
                     one judgment per soft constraint (eval.soft_judge; off by default: it costs LLM calls)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from spar.backends.base import Backend, SamplingParams
from spar.constraints import is_soft, verify
from spar.judge import Judge
from spar.prompts import actor_chat
from spar.records import Instruction


def _rate(ok: int, n: int) -> float | None:
    return ok / n if n else None


def heldout_scores(actor: Backend, instructions: Sequence[Instruction], max_new_tokens: int, out_dir: Path,
                   heldout_kinds: Sequence[str] = (), open_judge: Callable[[], Judge] | None = None,
                   repetition_penalty: float = 1.0) -> dict:
    """Scores of `actor` on held-out `instructions` (see the module docstring); the judge that `open_judge`
    returns (an LLM judge), called once the actor has answered, scores soft constraints; without it they are
    not scored. Responses and per-item results go to out_dir/heldout_responses.jsonl."""
    unseen = set(heldout_kinds)
    items = [i for i in instructions if any(not is_soft(c["id"]) for c in i.constraints)
             or (open_judge is not None and i.constraints)]
    if not items:
        return {}
    params = SamplingParams(max_new_tokens=max_new_tokens, repetition_penalty=repetition_penalty)
    outs = actor.generate([actor_chat(i.prompt) for i in items], params)
    texts = [row[0].text for row in outs]
    soft_items = [(inst, text, c) for inst, text in zip(items, texts) for c in inst.constraints if is_soft(c["id"])]
    soft_met: dict[int, list[bool]] = {}
    judge = open_judge() if open_judge is not None and soft_items else None
    if judge is not None:
        # the soft requirement alone as the instruction: the judge answers about it, not about the hard ones
        asked = [(Instruction(id=f"{inst.id}:{c['id']}", prompt=c.get("kwargs", {}).get("text") or c["id"],
                              constraints=[]), text) for inst, text, c in soft_items]
        for (inst, _, _), verdict in zip(soft_items, judge.judge(asked)):
            soft_met.setdefault(id(inst), []).append(verdict.label == "yes")
    counts = {k: 0 for k in ("all_ok", "all_n", "all_c_ok", "all_c_n", "seen_ok", "seen_n", "seen_c_ok", "seen_c_n",
                             "unseen_ok", "unseen_n", "unseen_c_ok", "unseen_c_n")}
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "heldout_responses.jsonl", "w", encoding="utf-8") as f:
        for inst, text in zip(items, texts):
            hard = [c for c in inst.constraints if not is_soft(c["id"])]
            row = {"id": inst.id, "response": text}
            if hard:
                result = verify(text, hard)
                group = "unseen" if any(c["id"] in unseen for c in hard) else "seen"
                counts["all_ok"] += result.passed
                counts["all_n"] += 1
                counts["all_c_ok"] += len(hard) - len(result.failed)
                counts["all_c_n"] += len(hard)
                counts[f"{group}_ok"] += result.passed
                counts[f"{group}_n"] += 1
                pooled = [c["id"] for c in hard if group == "seen" or c["id"] in unseen]
                counts[f"{group}_c_ok"] += sum(cid not in result.failed for cid in pooled)
                counts[f"{group}_c_n"] += len(pooled)
                row.update(failed=result.failed, group=group)
            if id(inst) in soft_met:
                row["soft_met"] = soft_met[id(inst)]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    met = [m for ms in soft_met.values() for m in ms]
    scores = {"heldout_prompt_level": _rate(counts["all_ok"], counts["all_n"]),
              "heldout_inst_level": _rate(counts["all_c_ok"], counts["all_c_n"]), "heldout_n": counts["all_n"]}
    for group in ("seen", "unseen"):
        scores[f"heldout_{group}_prompt_level"] = _rate(counts[f"{group}_ok"], counts[f"{group}_n"])
        scores[f"heldout_{group}_inst_level"] = _rate(counts[f"{group}_c_ok"], counts[f"{group}_c_n"])
        scores[f"heldout_{group}_n"] = counts[f"{group}_n"]
    if open_judge is not None:
        scores.update(heldout_soft=_rate(sum(met), len(met)), heldout_soft_n=len(met))
    (out_dir / "heldout.json").write_text(json.dumps(scores, indent=2))
    return scores


def ifeval_scores(actor: Backend, path: str, limit: int, max_new_tokens: int, out_dir: Path,
                  repetition_penalty: float = 1.0) -> dict:
    from spar.data.ifeval_rows import load_ifeval
    from spar.eval.ifeval import score

    rows = load_ifeval(path)
    rows = rows[:limit] if limit else rows
    params = SamplingParams(max_new_tokens=max_new_tokens, repetition_penalty=repetition_penalty)
    outs = actor.generate([actor_chat(r.prompt) for r in rows], params)
    result = score(rows, [o[0].text for o in outs])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ifeval.json").write_text(json.dumps(result.to_dict(), indent=2))
    return {"ifeval_prompt_strict": result.prompt_strict, "ifeval_inst_strict": result.inst_strict,
            "ifeval_prompt_loose": result.prompt_loose, "ifeval_inst_loose": result.inst_loose,
            "ifeval_average": result.average}
