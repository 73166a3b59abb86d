"""Evaluation inside the loop: held-out synthesized instructions (checked by code) and IFEval.

Held-out instructions never enter training (split "heldout"); the actor
answers greedily and the verifier scores every verifiable constraint:
prompt-level accuracy (all of an instruction's constraints met) and
instruction-level accuracy (pooled over constraints).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from spar.backends.base import Backend, SamplingParams
from spar.constraints import is_soft, verify
from spar.prompts import actor_chat
from spar.records import Instruction


def heldout_scores(actor: Backend, instructions: Sequence[Instruction], max_new_tokens: int, out_dir: Path) -> dict:
    items = [i for i in instructions if any(not is_soft(c["id"]) for c in i.constraints)]
    if not items:
        return {}
    outs = actor.generate([actor_chat(i.prompt) for i in items], SamplingParams(max_new_tokens=max_new_tokens))
    prompt_ok, inst_ok, inst_n = 0, 0, 0
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "heldout_responses.jsonl", "w", encoding="utf-8") as f:
        for inst, row in zip(items, outs):
            hard = [c for c in inst.constraints if not is_soft(c["id"])]
            result = verify(row[0].text, hard)
            prompt_ok += result.passed
            inst_ok += len(hard) - len(result.failed)
            inst_n += len(hard)
            f.write(json.dumps({"id": inst.id, "response": row[0].text, "failed": result.failed}, ensure_ascii=False) + "\n")
    scores = {"heldout_prompt_level": prompt_ok / len(items), "heldout_inst_level": inst_ok / inst_n, "heldout_n": len(items)}
    (out_dir / "heldout.json").write_text(json.dumps(scores, indent=2))
    return scores


def ifeval_scores(actor: Backend, path: str, limit: int, max_new_tokens: int, out_dir: Path) -> dict:
    from spar.data.ifeval import load_ifeval
    from spar.eval.ifeval import score

    rows = load_ifeval(path)
    rows = rows[:limit] if limit else rows
    outs = actor.generate([actor_chat(r.prompt) for r in rows], SamplingParams(max_new_tokens=max_new_tokens))
    result = score(rows, [o[0].text for o in outs])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ifeval.json").write_text(json.dumps(result.to_dict(), indent=2))
    return {"ifeval_prompt_strict": result.prompt_strict, "ifeval_inst_strict": result.inst_strict,
            "ifeval_prompt_loose": result.prompt_loose, "ifeval_inst_loose": result.inst_loose, "ifeval_average": result.average}
