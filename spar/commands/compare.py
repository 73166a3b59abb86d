"""`spar compare RUN...`: runs side by side, from their manifests (SPaR against its ablations).

    spar compare runs/cpu-quality runs/abl-sampled-pairs runs/abl-single-chain runs/abl-one-iteration
    spar compare runs/a runs/b --json            # the same numbers as JSON

One column per run; rows: what the run is (pairs trained on, search strategy
and budget, iterations), the held-out scores before, after the bootstrap and
after each iteration (all instructions; seen kinds in unseen phrasing;
unseen kinds; soft constraints by the judge; IFEval average when scored),
then per iteration the pairs, search success, mean edit distance of refined
and of sampled pairs (the paper's thesis: refined pairs differ less),
truncated completions, and the run's wall time (the stages a run copied
with `spar run --from` count, and are shown apart). A run still going or cut
short shows "-" where a stage has not finished.

Scores on a few dozen prompts move by chance, so differences come paired, on
the same held-out prompts (the runs share a seed, so they share the held-out
split): after each iteration against the base model, and each run's last
evaluation against the first run's. A paired difference shows the prompts
that went from failed to passed (+) and back (-), and the two-sided exact
sign-test p-value: the chance of a split at least that uneven if neither
model were better.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from spar.errors import UserError

SCORES = [("heldout_prompt_level", "held-out prompt"), ("heldout_seen_prompt_level", "seen kinds, new wording"),
          ("heldout_unseen_prompt_level", "unseen kinds"), ("heldout_soft", "soft (judge)"),
          ("ifeval_average", "IFEval average")]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (runs/<name>) written by spar run")
    p.add_argument("--json", action="store_true", help="print the compared numbers as JSON instead of a table")


def load_run(path: str | Path) -> dict:
    """What `compare` shows of one run: its settings and, per point (base, bootstrap, 0, 1, ...), its numbers."""
    root = Path(path)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise UserError(f"{path}: no manifest.json, so not a run directory of spar run (give runs/<name>)")
    try:
        manifest = json.loads(manifest_path.read_text())
        iterations = manifest["iterations"]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{manifest_path}: not a manifest of spar run ({e}); give the run directory spar run "
                        f"wrote") from None
    config = {}
    if (root / "config.yaml").is_file():
        config = yaml.safe_load((root / "config.yaml").read_text()) or {}
    search = config.get("search", {})
    search_text = None  # e.g. "bfs b3 s2 d3 max15": strategy, branch, select, max_depth, max_refinements
    if search:
        search_text = (f"{search.get('strategy', '?')} b{search.get('branch', '?')} s{search.get('select', '?')} "
                       f"d{search.get('max_depth', '?')} max{search.get('max_refinements', '?')}")
    entries = [stage for stages in iterations.values() for stage in stages.values() if isinstance(stage, dict)]
    run = {
        "run": str(root), "name": config.get("name", root.name),
        "train_on": config.get("pairs", {}).get("train_on"),
        "search": search_text,
        "iterations_planned": config.get("iterations"),
        "scores": {}, "iterations": [],
        "seconds": round(sum(s.get("seconds") or 0 for s in entries), 1),
        # of which spent by another run: stages `spar run --from` copied (its instructions, base eval, bootstrap)
        "copied_seconds": round(sum(s.get("seconds") or 0 for s in entries if s.get("copied_from")), 1),
    }
    run["passed"] = {}  # point -> {held-out instruction id: all its checkable constraints met}
    eval_dirs = {"base": root / "eval_base", "bootstrap": root / "bootstrap" / "eval"}
    for point in ("base", "bootstrap"):
        if iterations.get(point, {}).get("eval", {}).get("status") == "done":
            run["scores"][point] = iterations[point]["eval"].get("scores", {})
            run["passed"][point] = _passed(eval_dirs[point])
    t = 0
    while str(t) in iterations:
        stages = iterations[str(t)]
        pairs, search_stage, sample = stages.get("pairs", {}), stages.get("search", {}), stages.get("sample", {})
        run["iterations"].append({
            "iteration": t,
            "trained_pairs": stages.get("train_actor", {}).get("pairs"),
            "refinement_pairs": pairs.get("refinement_pairs"), "sampled_pairs": pairs.get("sampled_pairs"),
            "search_success": (search_stage["succeeded"] / search_stage["count"]
                               if search_stage.get("count") else None),
            "edit_distance_refined": pairs.get("refinement_edit_distance"),
            "edit_distance_sampled": pairs.get("sampled_edit_distance"),
            "truncated": (None if not sample and not search_stage
                          else sample.get("truncated", 0) + search_stage.get("truncated", 0)),
        })
        if stages.get("eval", {}).get("status") == "done":
            run["scores"][str(t)] = stages["eval"].get("scores", {})
            run["passed"][str(t)] = _passed(root / f"iter_{t}" / "eval")
        t += 1
    return run


def _passed(eval_dir: Path) -> dict[str, bool]:
    """{instruction id: passed} of one held-out evaluation (its per-item file; soft-only items have no verdict)."""
    path = eval_dir / "heldout_responses.jsonl"
    if not path.is_file():
        return {}
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            row = json.loads(line)
        except ValueError:
            raise UserError(f"{path}:{n}: not a JSON line; was the file edited? rerun the evaluation") from None
        if "failed" in row:
            out[row["id"]] = not row["failed"]
    return out


def sign_test(before: dict[str, bool], after: dict[str, bool]) -> dict | None:
    """Paired comparison on the items both hold: n, wins (failed -> passed), losses (passed -> failed) and the
    two-sided exact sign-test p-value; None when they share no item."""
    from math import comb

    shared = sorted(set(before) & set(after))
    if not shared:
        return None
    wins = sum(1 for k in shared if after[k] and not before[k])
    losses = sum(1 for k in shared if before[k] and not after[k])
    m = wins + losses
    p = min(1.0, 2 * sum(comb(m, k) for k in range(min(wins, losses) + 1)) / 2 ** m) if m else 1.0
    return {"n": len(shared), "wins": wins, "losses": losses, "p": p}


def _paired(test: dict | None) -> str:
    return "-" if test is None else f"+{test['wins']} -{test['losses']} p={test['p']:.2f}"


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _num(x) -> str:
    return "-" if x is None else (f"{x:.2f}" if isinstance(x, float) else str(x))


def _vs_base(run: dict, point: str) -> str:
    """The run's held-out results at `point` paired against its base model's, on the same prompts."""
    if point not in run["passed"]:
        return "-"
    return _paired(sign_test(run["passed"].get("base", {}), run["passed"][point]))


def _last_point(run: dict) -> str | None:
    """The run's last evaluated point (base, then bootstrap, then iterations 0, 1, ...); None if none."""
    order = {"base": -2, "bootstrap": -1}
    return max(run["passed"], key=lambda p: order[p] if p in order else int(p), default=None)


def table(runs: list[dict]) -> str:
    """The runs side by side: one column per run, one row per number."""
    rows: list[tuple[str, list[str]]] = [("run", [r["name"] for r in runs]),
                                         ("pairs trained on", [_num(r["train_on"]) for r in runs]),
                                         ("search", [_num(r["search"]) for r in runs]),
                                         ("iterations", [_num(r["iterations_planned"]) for r in runs])]
    points = ["base", "bootstrap"] + [str(t) for t in range(max((len(r["iterations"]) for r in runs), default=0))]
    for key, label in SCORES:
        if not any(key in s for r in runs for s in r["scores"].values()):
            continue  # a score no run has (IFEval not given, soft judge off)
        for point in points:
            if not any(point in r["scores"] for r in runs):
                continue
            where = point if point in ("base", "bootstrap") else f"iter {point}"
            rows.append((f"{label} @ {where}", [_pct(r["scores"].get(point, {}).get(key)) for r in runs]))
    per_iter = [("pairs trained", "trained_pairs", _num), ("refinement pairs", "refinement_pairs", _num),
                ("sampled pairs", "sampled_pairs", _num), ("search success %", "search_success", _pct),
                ("edit distance refined", "edit_distance_refined", _num),
                ("edit distance sampled", "edit_distance_sampled", _num), ("truncated", "truncated", _num)]
    for t in range(len(points) - 2):
        for label, key, fmt in per_iter:
            values = [fmt(r["iterations"][t][key]) if t < len(r["iterations"]) else "-" for r in runs]
            rows.append((f"{label} @ iter {t}", values))
    for point in points[1:]:  # paired against the base model, on the same held-out prompts
        if any(point in r["passed"] for r in runs):
            where = point if point == "bootstrap" else f"iter {point}"
            rows.append((f"held-out prompt @ {where} vs base", [_vs_base(r, point) for r in runs]))
    if len(runs) > 1:  # each run's last evaluation against the first run's
        first, first_last = runs[0], _last_point(runs[0])
        values = ["-"]
        for r in runs[1:]:
            last = _last_point(r)
            if first_last and last:
                values.append(_paired(sign_test(first["passed"][first_last], r["passed"][last])))
            else:
                values.append("-")
        rows.append((f"held-out prompt, last vs {first['name']}'s last", values))
    rows.append(("wall time (min)", [f"{r['seconds'] / 60:.1f}" + (f" ({r['copied_seconds'] / 60:.1f} copied)"
                                                                    if r.get("copied_seconds") else "")
                                     for r in runs]))
    width = max(len(label) for label, _ in rows)
    cols = [max(len(row[1][i]) for row in rows) for i in range(len(runs))]
    return "\n".join(f"{label:<{width}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(values, cols))
                     for label, values in rows)


def run(args: argparse.Namespace) -> int:
    runs = [load_run(p) for p in args.runs]
    print(json.dumps(runs, indent=2) if args.json else table(runs))
    return 0
