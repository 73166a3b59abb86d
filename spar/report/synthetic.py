"""A synthetic run directory shaped like a real one, for the report's tests and benchmark.

    python -c "from spar.report.synthetic import make_run; make_run('/tmp/big', trees=10_000)"

Trees follow the paper's BFS (branch 3, keep 2, depth <= 3, 5 votes per node); a refinement is its parent
with a few words changed, as real refinements are; critiques, pairs, RFT examples, held-out and IFEval
scores and the manifest agree with each other, so the report's numbers can be checked against it.
`hostile=True` puts markup into the model text (`</script>`, `<img onerror>`): the page must show it as text.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = ("the a model answer response list paragraph keyword bullet title section summary letter poem story "
         "travel plan city river mountain coffee morning weather report data science history music garden ocean "
         "should must write include exactly three five words sentences format markdown json quote end with "
         "question comma lowercase capital letters highlight placeholder postscript language english").split()
HOSTILE = ('</script><script>window.__pwned = 1</script>', '<img src=x onerror="window.__pwned = 1">',
           '<!-- not a comment', '&lt;escaped&gt; & "quotes"')
CONSTRAINTS = ("keywords:existence", "keywords:frequency", "length_constraints:number_words",
               "detectable_format:title", "detectable_format:number_bullet_lists", "startend:quotation",
               "change_case:english_lowercase", "punctuation:no_comma", "detectable_content:postscript")


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _edit(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    for _ in range(rng.randint(1, 4)):
        k = rng.randrange(len(words))
        words[k:k + rng.randint(0, 2)] = rng.choice(WORDS).split() * rng.randint(1, 2)
    return " ".join(words)


def _votes(rng: random.Random, value: float, n: int = 5) -> list[dict]:
    yes = round(value * n)
    return [{"verdict": "yes" if k < yes else "no", "critique": _words(rng, rng.randint(15, 35)), "truncated": False}
            for k in range(n)]


def _tree(rng: random.Random, iid: str, root_text: str, hostile: bool) -> dict:
    nodes = [{"id": "0", "parent": None, "depth": 0, "response": root_text, "critique": _words(rng, 25),
              "reasoning": "", "votes": _votes(rng, 0.2), "value": 0.2, "label": "no", "failed": False,
              "truncated": False}]
    frontier, success, best = [nodes[0]], False, nodes[0]
    for depth in range(1, 4):
        children = []
        for parent in frontier:
            for b in range(3):
                # one refinement in 20 is judged right: about half the trees succeed, the rest use all 15
                value = rng.choice((0.6, 0.8, 1.0)) if rng.random() < 0.05 else rng.choice((0.0, 0.2, 0.4))
                text = _edit(rng, parent["response"])
                if hostile and rng.random() < 0.3:
                    text += " " + rng.choice(HOSTILE)
                children.append({"id": f"{parent['id']}.{b}", "parent": parent["id"], "depth": depth,
                                 "response": text, "critique": _words(rng, rng.randint(15, 30)), "reasoning": "",
                                 "votes": _votes(rng, value), "value": value, "label": "yes" if value > 0.5 else "no",
                                 "failed": False, "truncated": rng.random() < 0.03})
        nodes.extend(children)
        top = max(children, key=lambda n: n["value"])
        if top["value"] > best["value"]:
            best = top
        if top["value"] > 0.5 and not top["truncated"]:
            success, best = True, top
            break
        frontier = sorted(children, key=lambda n: -n["value"])[:2]
    return {"instruction_id": iid, "root": "0", "nodes": nodes, "strategy": "bfs", "success": success,
            "best": best["id"], "calls": {"refine": len(nodes) - 1, "judge": 5 * (len(nodes) - 1)}}


def make_run(root: str | Path, trees: int = 200, iterations: int = 2, seed: int = 0, hostile: bool = False,
             ifeval: bool = True) -> Path:
    """Write a finished synthetic run of `iterations` iterations with `trees` trees each; return its path."""
    from spar.records import write_jsonl

    rng = random.Random(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(f"name: {root.name}\niterations: {iterations}\nseed: {seed}\n")
    instructions = []
    for k in range(trees + 20):
        cons = [{"id": c, "kwargs": {}} for c in rng.sample(CONSTRAINTS, rng.randint(1, 3))]
        prompt = f"Write about {rng.choice(WORDS)} {rng.choice(WORDS)}. " + _words(rng, rng.randint(10, 30))
        instructions.append({"id": f"s{k:06d}", "prompt": prompt, "constraints": cons, "source": "synthetic",
                             "split": "heldout" if k >= trees else "train"})
    if hostile:
        instructions[0]["prompt"] += " " + " ".join(HOSTILE)
    write_jsonl(root / "instructions.jsonl", instructions)
    per_id = lambda lo: {c: {"count": 10, "strict": round(rng.uniform(lo, lo + 0.4), 2),  # noqa: E731
                             "loose": round(rng.uniform(lo, lo + 0.5), 2)} for c in CONSTRAINTS}
    scores = lambda lo: {"heldout_prompt_level": round(lo, 3), "heldout_inst_level": round(lo + 0.1, 3),  # noqa
                         "heldout_n": 20, **({"ifeval_average": round(lo + 0.05, 3)} if ifeval else {})}
    manifest: dict = {"iterations": {"base": {"instructions": {"status": "done", "count": len(instructions)},
                                              "eval": {"status": "done", "scores": scores(0.3), "seconds": 12.0}}}}
    if ifeval:
        (root / "eval_base").mkdir(exist_ok=True)
        (root / "eval_base" / "ifeval.json").write_text(json.dumps({"per_instruction": per_id(0.2)}))
    for t in range(iterations):
        d = root / f"iter_{t}"
        grown, pairs, rft = [], [], []
        for inst in instructions[:trees]:
            root_text = _words(rng, rng.randint(60, 140))
            if hostile and inst is instructions[0]:
                root_text += " " + " ".join(HOSTILE)
            tree = _tree(rng, inst["id"], root_text, hostile)
            grown.append(tree)
            chat = [{"role": "user", "content": inst["prompt"]}]
            if tree["success"]:
                best = next(n for n in tree["nodes"] if n["id"] == tree["best"])
                pairs.append({"instruction_id": inst["id"], "prompt": chat, "chosen": best["response"],
                              "rejected": root_text, "source": "refinement",
                              "edit_distance": rng.randint(2, 12)})
                rft.append({"messages": chat + [{"role": "assistant", "content": best["response"]}],
                            "kind": "refine", "source": "tree", "label": ""})
            if rng.random() < 0.2:
                pairs.append({"instruction_id": inst["id"], "prompt": chat, "chosen": _words(rng, 90),
                              "rejected": root_text, "source": "sampled", "edit_distance": rng.randint(40, 120)})
            if rng.random() < 0.3:
                lab = rng.choice(("yes", "no"))
                rft.append({"messages": chat + [{"role": "assistant", "content": _words(rng, 30)}], "kind": "judge",
                            "source": rng.choice(("tree-node", "judge-stage")), "label": lab})
        write_jsonl(d / "trees.jsonl", grown)
        write_jsonl(d / "pairs.jsonl", pairs)
        write_jsonl(d / "rft.jsonl", rft)
        mean = lambda s: round(sum(p["edit_distance"] for p in pairs if p["source"] == s)  # noqa: E731
                               / max(1, sum(p["source"] == s for p in pairs)), 2)
        after = scores(0.35 + 0.05 * t)
        if ifeval:
            (d / "eval").mkdir(parents=True, exist_ok=True)
            (d / "eval" / "ifeval.json").write_text(json.dumps({"per_instruction": per_id(0.3 + 0.05 * t)}))
        manifest["iterations"][str(t)] = {
            "sample": {"status": "done", "count": 5 * trees, "truncated": trees // 10, "seconds": 100.0},
            "judge": {"status": "done", "count": 5 * trees, "seconds": 300.0},
            "negatives": {"status": "done", "count": trees, "instructions": trees, "seconds": 0.1},
            "search": {"status": "done", "file": f"iter_{t}/trees.jsonl", "count": len(grown),
                       "succeeded": sum(x["success"] for x in grown),
                       "refinements": sum(x["calls"]["refine"] for x in grown),
                       "truncated": sum(n["truncated"] for x in grown for n in x["nodes"][1:]), "seconds": 900.0},
            "pairs": {"status": "done", "count": len(pairs), "truncated_skipped": 0, "seconds": 0.5,
                      "refinement_pairs": sum(p["source"] == "refinement" for p in pairs),
                      "sampled_pairs": sum(p["source"] == "sampled" for p in pairs),
                      "refinement_edit_distance": mean("refinement"), "sampled_edit_distance": mean("sampled")},
            "rft": {"status": "done", "count": len(rft), "refine": sum(e["kind"] == "refine" for e in rft),
                    "judge": sum(e["kind"] == "judge" for e in rft), "seconds": 0.3,
                    "judge_yes": sum(e["label"] == "yes" for e in rft),
                    "judge_no": sum(e["label"] == "no" for e in rft),
                    "truncated_skipped": 0},
            "train_actor": {"status": "done", "trained": True, "seconds": 600.0},
            "train_refiner": {"status": "done", "trained": True, "seconds": 700.0},
            "eval": {"status": "done", "scores": after, "seconds": 30.0},
        }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root
