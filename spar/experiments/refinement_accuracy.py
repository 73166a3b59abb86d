"""Refinement accuracy (the paper's Tables 3 and 10): how many of a run's refinements really follow the instruction.

    spar experiment refinement-accuracy runs/cpu-smollm2                 # judge: each iteration's own refiner
    spar experiment refinement-accuracy runs/cpu-smollm2 --iteration 1 --judge-n 5
    spar experiment refinement-accuracy runs/R --judge-model gpt-4o --backend openai \\
        --base-url https://api.openai.com/v1                              # a strong judge, as the paper's GPT-4o

The paper asks a strong judge (GPT-4o) whether the refined responses follow their instructions, next to what
the refiner itself says. Here, for every tree of RUN/iter_<t>/trees.jsonl, the refinement the search returned
(the successful one; for a failed search the best node it found) is judged again:

* by an LLM judge with the run's judge settings (judge.n, temperature, ...; `--judge-*` flags override them).
  Its model is, by default, the refiner that searched in that iteration (the checkpoint the manifest names),
  so the numbers say how far the refiner believes its own refinements; `--judge-model` (and `--backend`) puts
  any model behind any backend in its place. The judge is an `llm` judge, not the run's `hybrid` one, so its
  verdict is independent of the verifier's; `--judge hybrid` is allowed and then agrees with it by construction
  wherever code says no.
* by the verifier (spar.constraints.verify) where the instruction has checkable constraints: the ground truth
  on those constraints (soft constraints are not checked by code, so "verifier passed" means every checkable
  constraint is met).

Per iteration it reports: trees, refinements judged (trees whose best node is a refinement; a search whose
every refinement could not be parsed has none), the share the search itself judged right (`Tree.success`), the
share the judge accepts (label yes; abstentions count as not accepted and are counted apart), the share of
checkable refinements the verifier passes, and judge vs verifier on the checkable ones: agreement and the 2x2
confusion (rows: judge yes / not yes; columns: verifier pass / fail).

Writes --out (default RUN/experiments/refinement_accuracy/): refinement_accuracy.json (settings, one summary
per iteration, one row per refinement), table.txt (the printed table) and refinement_accuracy.svg (a bar chart
per iteration). Nothing is resumed: a rerun judges every refinement again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spar.config import JudgeConfig, add_flags, flags_config
from spar.errors import UserError
from spar.experiments import save_result

OUTPUTS = ("refinement_accuracy.json", "table.txt", "refinement_accuracy.svg")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from spar.commands.generate import add_backend_flags

    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (holds config.yaml and iter_<t>/trees.jsonl)")
    p.add_argument("--iteration", default=None, metavar="T", help="only iteration T (default: every iteration "
                                                                   "with trees)")
    p.add_argument("--judge-model", default=None, metavar="NAME",
                   help="the judge's model (default: the refiner that searched in each iteration)")
    p.add_argument("--backend", default=None, help="the judge model's backend: hf, vllm, openai, auto, scripted "
                                                   "(default: the run's refiner backend)")
    p.add_argument("--batch-size", default=None, metavar="INT", help="hf backend: sequences per generate call "
                                                                     "(default: the run's refiner.batch_size)")
    # every judge.* flag defaults to None: one left out keeps the run's setting
    add_flags(p, JudgeConfig, "judge.", rename={"kind": "--judge"}, prefix="--judge-", exclude=("always_llm",))
    p.add_argument("--seed", default=None, help="judge sampling seed (default: the run's seed)")
    p.add_argument("--out", default=None, help="folder for refinement_accuracy.json, table.txt, "
                                               "refinement_accuracy.svg (default: RUN/experiments/refinement_accuracy)")
    add_backend_flags(p)
    p.epilog = ("--judge-* flags left out keep the run's judge settings (RUN_DIR/config.yaml), except the kind: "
                "an llm judge unless --judge hybrid")


# ---- what is read from the run -------------------------------------------------------------------


def iterations_with_trees(run: Path, only: int | None) -> list[tuple[int, Path]]:
    """(t, trees.jsonl) of the iterations to measure, in order; none is a one-line UserError."""
    if only is not None:
        path = run / f"iter_{only}" / "trees.jsonl"
        if not path.is_file():
            raise UserError(f"{path}: no such file; iteration {only} has no finished search stage (run `spar run` "
                            f"until it does, or give another --iteration)")
        return [(only, path)]
    found = sorted((int(d.name[5:]), d / "trees.jsonl") for d in run.glob("iter_*")
                   if d.name[5:].isdigit() and (d / "trees.jsonl").is_file())
    if not found:
        raise UserError(f"{run}/iter_<t>/trees.jsonl: no such file in {run}; give a run directory whose search "
                        f"stage finished (run `spar run` until iter_0/trees.jsonl exists)")
    return found


def searched_refiner(run_cfg, manifest: dict, t: int) -> str:
    """The refiner that searched in iteration t: the checkpoint the stages before wrote, as the loop chooses it
    (Loop.models_for); the run directory may have moved, so the manifest is read here, not through a Loop."""
    stages = manifest.get("iterations", {})
    refiner = run_cfg.refiner.name
    if run_cfg.bootstrap.enabled:
        refiner = stages.get("bootstrap", {}).get("train_refiner", {}).get("model", refiner)
    for s in range(t):
        refiner = stages.get(str(s), {}).get("train_refiner", {}).get("model", refiner)
    return refiner


def best_refinement(tree) -> dict[str, Any] | None:
    """The node the search returned, or None when it is the root (no refinement could be parsed)."""
    if tree.best is None or tree.best == tree.root:
        return None
    return next((n for n in tree.nodes if n["id"] == tree.best), None)


# ---- measuring ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One refinement: what the search, the judge and the verifier say of it."""

    iteration: int
    instruction_id: str
    node: str
    depth: int
    search_success: bool
    truncated: bool
    judge_label: str  # yes | no | abstain
    judge_value: float | None
    checkable: bool
    verifier_passed: bool | None  # None: no checkable constraint
    verifier_failed: list[str] = field(default_factory=list)


@dataclass
class Summary:
    iteration: int
    judge_model: str
    trees: int
    refinements: int  # trees whose best node is a refinement
    search_success: float | None  # share of refinements the search judged right
    judge_accepted: float | None  # share of refinements the judge labels yes
    judge_abstained: int
    checkable: int
    verifier_passed: float | None  # share of checkable refinements meeting every checkable constraint
    agreement: float | None  # judge yes == verifier pass, over the checkable ones
    # judge (yes / not yes) x verifier (pass / fail), over the checkable refinements
    confusion: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def measure(t: int, trees: list, by_id: dict, judge, judge_model: str) -> tuple[Summary, list[Row]]:
    """Judge the returned refinement of every tree in one batched judge call and verify the checkable ones."""
    from spar.constraints import is_soft, verify

    started = time.time()
    picked = []
    for tree in trees:
        node = best_refinement(tree)
        if node is not None:
            picked.append((tree, node, by_id[tree.instruction_id]))
    verdicts = judge.judge([(inst, node["response"]) for _, node, inst in picked]) if picked else []
    rows = []
    for (tree, node, inst), verdict in zip(picked, verdicts, strict=True):
        hard = [c for c in inst.constraints if not is_soft(c["id"])]
        result = verify(node["response"], hard) if hard else None
        rows.append(Row(t, tree.instruction_id, node["id"], node.get("depth", 0), tree.success,
                        bool(node.get("truncated")), verdict.label, verdict.value, bool(hard),
                        None if result is None else result.passed, [] if result is None else list(result.failed)))
    return summarize(t, len(trees), rows, judge_model, time.time() - started), rows


def summarize(t: int, trees: int, rows: list[Row], judge_model: str, seconds: float) -> Summary:
    share = lambda k, n: k / n if n else None  # noqa: E731
    checked = [r for r in rows if r.checkable]
    confusion = {"judge_yes_verifier_pass": 0, "judge_yes_verifier_fail": 0,
                 "judge_not_yes_verifier_pass": 0, "judge_not_yes_verifier_fail": 0}
    for r in checked:
        confusion[f"judge_{'yes' if r.judge_label == 'yes' else 'not_yes'}_verifier_"
                  f"{'pass' if r.verifier_passed else 'fail'}"] += 1
    agree = confusion["judge_yes_verifier_pass"] + confusion["judge_not_yes_verifier_fail"]
    return Summary(
        iteration=t, judge_model=judge_model, trees=trees, refinements=len(rows),
        search_success=share(sum(r.search_success for r in rows), len(rows)),
        judge_accepted=share(sum(r.judge_label == "yes" for r in rows), len(rows)),
        judge_abstained=sum(r.judge_label == "abstain" for r in rows), checkable=len(checked),
        verifier_passed=share(sum(bool(r.verifier_passed) for r in checked), len(checked)),
        agreement=share(agree, len(checked)), confusion=confusion, seconds=round(seconds, 3))


# ---- settings -----------------------------------------------------------------------------------


@dataclass
class Settings:
    run_dir: str
    iteration: int | None
    judge_model: str | None  # None: each iteration's searching refiner
    backend: str
    batch_size: int
    seed: int
    out: str


def _int(text: Any, flag: str, low: int) -> int:
    try:
        value = int(str(text))
    except ValueError:
        raise UserError(f"command line '{flag} {text}': must be an integer") from None
    if value < low:
        raise UserError(f"command line '{flag} {text}': must be >= {low}")
    return value


def settings(args: argparse.Namespace):
    """The run's config, and the flags over it, all checked before any model loads."""
    from spar.config import load_config

    run = Path(args.run_dir)
    if not run.is_dir():
        raise UserError(f"{run}: no such directory; give a run directory (runs/<name>, as `spar run` writes it)")
    config_path = run / "config.yaml"
    if not config_path.is_file():
        raise UserError(f"{config_path}: no such file; {run} is not a run directory (give runs/<name>, which holds "
                        f"config.yaml and iter_<t>/trees.jsonl)")
    run_cfg = load_config(config_path)
    given = flags_config(args, JudgeConfig, "judge.")  # each flag checked here; only the ones given are used
    names = [f.name for f in dataclasses.fields(JudgeConfig) if getattr(args, "judge." + f.name, None) is not None]
    try:
        # an LLM judge by default: the run's hybrid judge would copy the verifier's "no" verdicts
        judge_cfg = dataclasses.replace(run_cfg.judge, **{"kind": "llm", **{n: getattr(given, n) for n in names}})
    except ValueError as e:
        raise UserError(f"the --judge-* flags over {config_path}'s judge settings: {e}") from None
    if judge_cfg.kind == "verifier":
        raise UserError("--judge verifier: the verifier is already the other column; choose llm (default) or hybrid")
    backend = args.backend or run_cfg.refiner.backend
    from spar.config import ModelConfig

    try:
        ModelConfig(name=args.judge_model or run_cfg.refiner.name, backend=backend)
    except ValueError as e:
        raise UserError(f"command line '--backend {backend}': {e}") from None
    s = Settings(
        run_dir=str(run), iteration=None if args.iteration is None else _int(args.iteration, "--iteration", 0),
        judge_model=args.judge_model, backend=backend,
        batch_size=run_cfg.refiner.batch_size if args.batch_size is None else _int(args.batch_size, "--batch-size", 1),
        seed=run_cfg.seed if args.seed is None else _int(args.seed, "--seed", 0),
        out=args.out or str(run / "experiments" / "refinement_accuracy"))
    return s, run_cfg, judge_cfg


def _backend_options(args, s: Settings, run_cfg) -> dict:
    from spar.commands.generate import backend_options
    from spar.config import ModelConfig

    # the run's refiner options (base_urls, dtype, ...) hold while its backend is the judge's; flags override them
    options = run_cfg.refiner.options if s.backend == run_cfg.refiner.backend else {}
    return backend_options(args, ModelConfig(name=s.judge_model or run_cfg.refiner.name, backend=s.backend,
                                             batch_size=s.batch_size, options=dict(options)))


# ---- the report --------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def table(summaries: list[Summary]) -> str:
    head = (f"{'iter':>4s} {'trees':>5s} {'refined':>7s} {'search':>7s} {'judge':>7s} {'abstain':>7s} "
            f"{'checkable':>9s} {'verifier':>8s} {'agree':>7s}  {'yes/pass':>8s} {'yes/fail':>8s} "
            f"{'no/pass':>8s} {'no/fail':>8s}  judge model")
    lines = [head]
    for s in summaries:
        c = s.confusion
        lines.append(f"{s.iteration:4d} {s.trees:5d} {s.refinements:7d} {_pct(s.search_success):>7s} "
                     f"{_pct(s.judge_accepted):>7s} {s.judge_abstained:7d} {s.checkable:9d} "
                     f"{_pct(s.verifier_passed):>8s} {_pct(s.agreement):>7s}  "
                     f"{c['judge_yes_verifier_pass']:8d} {c['judge_yes_verifier_fail']:8d} "
                     f"{c['judge_not_yes_verifier_pass']:8d} {c['judge_not_yes_verifier_fail']:8d}  {s.judge_model}")
    lines.append("(refined = trees whose returned node is a refinement; search / judge = % of them the search / "
                 "the judge says follow the instruction;\n verifier = % of the checkable ones meeting every "
                 "checkable constraint; agree and the 2x2 (judge yes|not yes / verifier pass|fail) over those)")
    return "\n".join(lines)


def plot(summaries: list[Summary], path: Path) -> None:
    """Grouped bars per iteration: search success, judge accepted, verifier passed, agreement (%)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [("search_success", "search judged right"), ("judge_accepted", "judge accepts"),
            ("verifier_passed", "verifier passes (checkable)"), ("agreement", "judge = verifier (checkable)")]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.8 * len(summaries) + 3), 4))
    width = 0.8 / len(bars)
    for k, (key, label) in enumerate(bars):
        xs = [i + (k - (len(bars) - 1) / 2) * width for i in range(len(summaries))]
        ys = [100 * getattr(s, key) if getattr(s, key) is not None else 0.0 for s in summaries]
        ax.bar(xs, ys, width, label=label)
    ax.set_xticks(range(len(summaries)), [f"iter {s.iteration}\n({s.refinements} refined)" for s in summaries])
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of refinements")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Refinement accuracy (SPaR Tables 3/10)")
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


# ---- the command --------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from spar.records import Tree, read_instructions, read_jsonl, refuse_overwrite, require_records

    s, run_cfg, judge_cfg = settings(args)  # bad flags and a bad RUN_DIR stop here
    run_dir = Path(s.run_dir)
    todo = iterations_with_trees(run_dir, s.iteration)
    options = _backend_options(args, s, run_cfg)
    refuse_overwrite(s.out, "--out", {f"iter_{t} trees": p for t, p in todo}, directory=True, writes=OUTPUTS)
    instructions_path = run_dir / "instructions.jsonl"
    if not instructions_path.is_file():
        raise UserError(f"{instructions_path}: no such file; the run's instructions are needed to judge its trees")
    by_id = {i.id: i for i in read_instructions(instructions_path)}
    trees = {}
    for t, path in todo:
        trees[t] = require_records(read_jsonl(path, Tree), path, "trees")
        missing = next((x.instruction_id for x in trees[t] if x.instruction_id not in by_id), None)
        if missing is not None:
            raise UserError(f"{path}: a tree of instruction {missing!r}, which {instructions_path} does not hold; "
                            f"give the run directory the trees were grown in")
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}

    from spar.backends import make_backend
    from spar.commands.generate import check_context
    from spar.judge import judge_from_config, judge_request

    summaries, rows = [], []
    started = time.time()
    backend, open_model = None, None
    try:
        for t, _ in todo:
            model = s.judge_model or searched_refiner(run_cfg, manifest, t)
            if model != open_model:  # one engine at a time: the previous iteration's refiner is closed first
                if backend is not None:
                    backend.close()
                backend = None
                backend, open_model = make_backend(s.backend, model, **options), model
            picked = [(by_id[x.instruction_id], n["response"]) for x in trees[t] if (n := best_refinement(x))]
            check_context(backend, [judge_request(i, r, judge_cfg.kind == "hybrid") for i, r in picked],
                          judge_cfg.max_new_tokens, [f"iteration {t}, instruction {i.id}" for i, _ in picked])
            judge = judge_from_config(judge_cfg, backend, s.seed)
            summary, mine = measure(t, trees[t], by_id, judge, model)
            summaries.append(summary)
            rows += mine
            print(f"iteration {t}: {summary.refinements} refinements judged by {model} in {summary.seconds:.0f}s",
                  file=sys.stderr)
    finally:
        if backend is not None:
            backend.close()
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"experiment": "refinement-accuracy", "run": str(run_dir), "judge": asdict(judge_cfg),
              "settings": asdict(s), "seconds": round(time.time() - started, 1),
              "iterations": [asdict(x) for x in summaries], "rows": [asdict(r) for r in rows]}
    save_result(out, "refinement_accuracy", result, table(summaries), lambda path: plot(summaries, path))
    return 0
