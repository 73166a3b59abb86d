"""`spar data stats FILE`: what an instruction file holds."""

from __future__ import annotations

from collections import Counter

from spar.constraints import REGISTRY, get, is_soft
from spar.records import Instruction


def taxonomy_of(constraint: dict) -> str:
    if is_soft(constraint["id"]):
        return (constraint.get("kwargs") or {}).get("taxonomy", "General/other")
    return get(constraint["id"]).taxonomy if constraint["id"] in REGISTRY else "unknown"


def stats(instructions: list[Instruction]) -> dict:
    kinds, classes, groups = Counter(), Counter(), Counter()
    for inst in instructions:
        for c in inst.constraints:
            kinds[c["id"]] += 1
            tax = taxonomy_of(c)
            classes[tax] += 1
            groups[tax.split("/")[0]] += 1
    lengths = sorted(len(i.prompt.split()) for i in instructions) or [0]
    q = lambda p: lengths[min(len(lengths) - 1, int(p * len(lengths)))]  # noqa: E731
    return {
        "instructions": len(instructions),
        "splits": dict(Counter(i.split for i in instructions)),
        "constraints_per_instruction": dict(sorted(Counter(len(i.constraints) for i in instructions).items())),
        "taxonomy_classes": dict(groups.most_common()),
        "taxonomy_kinds": dict(classes.most_common()),
        "constraint_ids": dict(kinds.most_common()),
        "prompt_words": {"min": lengths[0], "p25": q(0.25), "median": q(0.5), "p75": q(0.75), "max": lengths[-1]},
    }


def format_stats(s: dict) -> str:
    lines = [f"{s['instructions']} instructions; splits {s['splits']}; "
             f"constraints per instruction {s['constraints_per_instruction']}",
             f"prompt length in words: {s['prompt_words']}", "taxonomy classes:"]
    lines += [f"  {k:10s} {v}" for k, v in s["taxonomy_classes"].items()]
    lines.append("taxonomy kinds:")
    lines += [f"  {k:28s} {v}" for k, v in s["taxonomy_kinds"].items()]
    lines.append("constraint ids:")
    lines += [f"  {k:48s} {v}" for k, v in s["constraint_ids"].items()]
    return "\n".join(lines)
