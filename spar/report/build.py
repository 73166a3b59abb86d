"""What the report shows, gathered from a run directory: summary rows, trees, pairs, RFT examples, scores.

    data = gather("runs/cpu-smollm2")   # -> RunData; never raises on a half-finished or damaged run

The manifest is the record of finished stages: the summary takes its numbers from it. A stage the manifest
does not list as done (the run is still going, was killed, or the manifest is lost) is counted from the files
that exist, including a stage's `<file>.partial`, and marked as partial. Every part that is missing, unreadable
or unfinished is named in `RunData.notes`, so the report says what it could not show and why.

Reads files only: no model, no torch, nothing above the records layer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spar.errors import UserError

# stages of an iteration, in loop order, with the file each writes (ARCHITECTURE.md, "A run directory")
STAGES = ("sample", "judge", "negatives", "search", "pairs", "rft", "train_actor", "train_refiner", "eval")
FILES = {"sample": "responses.jsonl", "judge": "judgments.jsonl", "negatives": "negatives.jsonl",
         "search": "trees.jsonl", "pairs": "pairs.jsonl", "rft": "rft.jsonl"}


@dataclass
class Iteration:
    t: int
    stages: dict[str, dict]  # the manifest's entries of this iteration
    trees: list[dict] = field(default_factory=list)
    pairs: list[dict] = field(default_factory=list)
    rft: list[dict] = field(default_factory=list)
    partial: set[str] = field(default_factory=set)  # stages whose records come from an unfinished file


@dataclass
class Experiment:
    name: str  # the folder under RUN/experiments/
    tables: list[tuple[str, str]]  # (file name, text) of each .txt
    plots: list[tuple[str, str]]  # (file name, SVG text) of each .svg


@dataclass
class RunData:
    root: Path
    name: str
    config: dict  # config.yaml as written by the run ({} when missing)
    config_text: str
    manifest: dict
    instructions: dict[str, dict]  # id -> Instruction fields
    iterations: list[Iteration]
    before: dict  # held-out scores of the base model
    ifeval: dict[str, dict]  # "before" / "after" -> per-instruction-id {count, strict, loose}, when IFEval ran
    notes: list[str] = field(default_factory=list)  # missing or unfinished parts, in words
    # the paper's experiments run on this run (`--out RUN/experiments/<name>`): name, tables, SVG plots
    experiments: list[Experiment] = field(default_factory=list)

    def rows(self) -> list[dict]:
        return [summary_row(it, self.before if k == 0 else _scores(self.iterations[k - 1]))
                for k, it in enumerate(self.iterations)]


def read_records(path: Path, notes: list[str], what: str) -> tuple[list[dict], bool] | None:
    """Records of `path`, else of `path.partial` (a stage cut short); None (and a note) when neither exists.

    Unlike the loop's reader this never raises: a line that does not parse is skipped and counted in a note,
    so one damaged line does not take the whole report down.
    """
    partial = path.with_name(path.name + ".partial")
    src = path if path.is_file() else partial if partial.is_file() else None
    if src is None:
        notes.append(f"{what}: {path.name} is missing")
        return None
    records, bad = [], 0
    with open(src, "rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                bad += 1
                continue
            if isinstance(obj, dict):
                records.append(obj)
            else:
                bad += 1
    if bad:
        notes.append(f"{what}: {bad} unreadable line(s) of {src.name} skipped")
    if src is partial:
        notes.append(f"{what}: the stage did not finish; {len(records)} record(s) of {src.name} shown")
    return records, src is partial


def gather(run_dir: str | Path) -> RunData:
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"{root}: not a directory; give the run directory of `spar run` (runs/<name>)")
    iter_dirs = {int(m.group(1)): p for p in root.iterdir()
                 if (m := re.fullmatch(r"iter_(\d+)", p.name)) and p.is_dir()}
    has_manifest = (root / "manifest.json").is_file()
    if not (has_manifest or iter_dirs or (root / "config.yaml").is_file()):
        raise UserError(f"{root}: not a run directory (no manifest.json, config.yaml or iter_<t>/ in it); give the "
                        f"directory `spar run` wrote, runs/<name> under the config's out_dir")
    notes: list[str] = []
    manifest: dict = {}
    if has_manifest:
        try:
            manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as e:
            notes.append(f"manifest.json is unreadable ({e}); counts come from the files present")
            manifest = {}
    else:
        notes.append("manifest.json is missing; counts come from the files present")
    stages_by_t = manifest.get("iterations", {}) if isinstance(manifest.get("iterations"), dict) else {}

    config, config_text = {}, ""
    if (root / "config.yaml").is_file():
        import yaml

        config_text = (root / "config.yaml").read_text(encoding="utf-8", errors="replace")
        try:
            config = yaml.safe_load(config_text) or {}
        except yaml.YAMLError as e:
            notes.append(f"config.yaml is unreadable ({str(e).splitlines()[0]})")
        config = config if isinstance(config, dict) else {}
    else:
        notes.append("config.yaml is missing")

    instructions: dict[str, dict] = {}
    got = read_records(root / "instructions.jsonl", notes, "instructions")
    if got:
        instructions = {str(r.get("id")): r for r in got[0]}

    planned = config.get("iterations") if isinstance(config.get("iterations"), int) else 0
    ts = sorted(set(iter_dirs) | {int(t) for t in stages_by_t if str(t).isdigit()})
    iterations = []
    for t in ts:
        it = Iteration(t, {k: v for k, v in stages_by_t.get(str(t), {}).items() if isinstance(v, dict)})
        d = root / f"iter_{t}"
        for stage, attr in (("search", "trees"), ("pairs", "pairs"), ("rft", "rft")):
            if not _done(it, stage) and not (d / FILES[stage]).exists() and \
                    not (d / (FILES[stage] + ".partial")).exists():
                notes.append(f"iteration {t}: {stage} has not run (no {FILES[stage]})")
                continue
            got = read_records(d / FILES[stage], notes, f"iteration {t} {stage}")
            if got:
                setattr(it, attr, got[0])
                if got[1] or not _done(it, stage):
                    it.partial.add(stage)
        if not _done(it, "eval"):
            undone = [s for s in STAGES if not _done(it, s)]
            notes.append(f"iteration {t}: unfinished, stages not done: {', '.join(undone)}")
        iterations.append(it)
    for t in range(len(ts) and ts[-1] + 1 or 0, planned):
        notes.append(f"iteration {t}: not started ({planned} planned in config.yaml)")

    before = stages_by_t.get("base", {}).get("eval", {}).get("scores", {}) if stages_by_t else {}
    if not before:
        notes.append("base model scores are missing (the base eval stage has not finished)")
    ifeval = {}
    last = next((it for it in reversed(iterations) if _done(it, "eval")), None)
    for key, path in (("before", root / "eval_base" / "ifeval.json"),
                      ("after", root / f"iter_{last.t}" / "eval" / "ifeval.json" if last else None)):
        if path is not None and path.is_file():
            try:
                ifeval[key] = json.loads(path.read_text(encoding="utf-8")).get("per_instruction", {})
            except (ValueError, AttributeError):
                notes.append(f"{path.relative_to(root)} is unreadable")
    name = str(config.get("name") or root.name)
    return RunData(root, name, config, config_text, manifest, instructions, iterations, before, ifeval, notes,
                   experiments(root, notes))


def experiments(root: Path, notes: list[str]) -> list[Experiment]:
    """Each folder of RUN/experiments/ (where `spar experiment refinement-accuracy RUN` writes, and any other
    experiment's --out may): its tables (.txt) and plots (.svg); an unreadable file is left out with a note."""
    found = []
    folder = root / "experiments"
    for d in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        files: dict[str, list[tuple[str, str]]] = {".txt": [], ".svg": []}
        for f in sorted(d.iterdir()):
            if f.suffix in files and f.is_file():
                try:
                    text = f.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as e:
                    notes.append(f"{f.relative_to(root)} is unreadable ({e})")
                    continue
                if f.suffix == ".svg" and "<svg" not in text:
                    notes.append(f"{f.relative_to(root)} is not an SVG image")
                    continue
                files[f.suffix].append((f.name, text))
        if files[".txt"] or files[".svg"]:
            found.append(Experiment(d.name, files[".txt"], files[".svg"]))
    return found


def _done(it: Iteration, stage: str) -> bool:
    return it.stages.get(stage, {}).get("status") == "done"


def _scores(it: Iteration) -> dict:
    return it.stages.get("eval", {}).get("scores", {}) if _done(it, "eval") else {}


def _mean(xs: list) -> float | None:
    xs = [x for x in xs if isinstance(x, (int, float))]
    return round(sum(xs) / len(xs), 2) if xs else None


def summary_row(it: Iteration, before: dict) -> dict[str, Any]:
    """One iteration's line of the summary: the manifest's numbers, or counts from the files where the manifest
    has none (then the key is listed in `row["partial"]`)."""
    st = it.stages
    g = lambda stage, key, default=None: st.get(stage, {}).get(key, default) if _done(it, stage) else default  # noqa
    row: dict[str, Any] = {"iteration": it.t, "partial": []}

    def put(key: str, from_manifest, from_files, stage: str) -> None:
        if _done(it, stage):
            row[key] = from_manifest
        else:
            row[key] = from_files() if stage in it.partial else None
            if row[key] is not None:
                row["partial"].append(key)

    row["negatives"] = g("negatives", "count")
    row["instructions"] = g("negatives", "instructions")
    put("trees", g("search", "count"), lambda: len(it.trees), "search")
    put("succeeded", g("search", "succeeded"), lambda: sum(bool(x.get("success")) for x in it.trees), "search")
    put("refinements", g("search", "refinements"),
        lambda: sum((x.get("calls") or {}).get("refine", 0) for x in it.trees), "search")
    row["search_success"] = row["succeeded"] / row["trees"] if row["trees"] else None
    row["refinements_per_tree"] = round(row["refinements"] / row["trees"], 2) if row["trees"] else None
    if "trees" in row["partial"]:
        row["partial"] += ["search_success", "refinements_per_tree"]
    for s in ("refinement", "sampled"):
        put(f"{s}_pairs", g("pairs", f"{s}_pairs"), lambda s=s: sum(p.get("source") == s for p in it.pairs), "pairs")
        put(f"{s}_edit_distance", g("pairs", f"{s}_edit_distance"),
            lambda s=s: _mean([p.get("edit_distance") for p in it.pairs if p.get("source") == s]), "pairs")
    put("rft_refine", g("rft", "refine"), lambda: sum(e.get("kind") == "refine" for e in it.rft), "rft")
    for lab in ("yes", "no"):
        put(f"rft_judge_{lab}", g("rft", f"judge_{lab}"),
            lambda lab=lab: sum(e.get("kind") == "judge" and e.get("label") == lab for e in it.rft), "rft")
    row["rft_by_source"] = g("rft", "by_source", {})
    row["truncated_responses"] = g("sample", "truncated")
    row["truncated_refinements"] = g("search", "truncated")
    row["pairs_truncated_skipped"] = g("pairs", "truncated_skipped")
    row["rft_truncated_skipped"] = g("rft", "truncated_skipped")
    row["before"], row["after"] = before, _scores(it)
    row["seconds"] = {s: st[s]["seconds"] for s in STAGES if _done(it, s) and "seconds" in st[s]}
    row["stages_done"] = [s for s in STAGES if _done(it, s)]
    return row
