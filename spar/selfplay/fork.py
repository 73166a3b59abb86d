"""Start a run from another run's shared beginning: `spar run --config ABLATION.yaml --from RUN`.

An ablation differs from its main run only in its iterations (the pairs it trains on, the search, the
number of iterations), so everything before iteration 0 - the instructions, the base model's evaluation and
the bootstrap (SPaR-SFT data, both SFT checkpoints, their evaluation) - is the same computation. `fork`
copies those finished stages, files and manifest entries, into the new run, which then continues as if it
had computed them: the comparison starts from identical models and data, and the CPU hour is spent once.

Allowed only when every setting those stages depend on is the same in both configs; the settings that may
differ are the ones below (plus those any resume may change, except the evaluation's: base and later scores
must be measured alike).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from spar.config import RESUME_SAFE, differing, load_config, matches
from spar.errors import UserError
from spar.selfplay.rundir import RunDir

ITERATION_ONLY = ("name", "out_dir", "iterations", "data.per_iteration", "pairs.*", "search.*", "rft_data.*",
                  "train.*")
NOT_ITERATION_ONLY = ("search.prefill",)  # the bootstrap writes its refinements in the search's prompt format


def shared_stages(cfg) -> dict[str, list[str]]:
    """The manifest stages before iteration 0, by manifest key."""
    stages = {"base": ["instructions", "eval"]}
    if cfg.bootstrap.enabled:
        stages["bootstrap"] = ["data", "train_actor", "train_refiner", "eval"]
    return stages


def differing_settings(source_cfg, cfg) -> dict[str, tuple]:
    """Settings that differ between the two configs and that the shared stages depend on: key -> (source, new)."""
    may_differ = [p for p in ITERATION_ONLY + RESUME_SAFE if not p.startswith("eval.")]
    return {key: values for key, values in differing(source_cfg, cfg).items()
            if key in NOT_ITERATION_ONLY or not matches(key, may_differ)}


def fork(source: str | Path, rd: RunDir, cfg) -> None:
    """Copy `source`'s finished stages before iteration 0 into the new run `rd`; a no-op for a run already
    forked from `source` (a resumed ablation). Every refusal comes before anything is written."""
    src = Path(source)
    where = f"--from {source}"
    if not (src / "manifest.json").is_file() or not (src / "config.yaml").is_file():
        raise UserError(f"{where}: not a run directory (no manifest.json and config.yaml); give the directory "
                        f"of a run started with `spar run`, e.g. runs/cpu-quality")
    if src.resolve() == rd.root.resolve():
        raise UserError(f"{where}: is this run itself; give the run to start from, or drop --from to resume")
    forked = rd.manifest.get("forked_from")
    if forked:
        if Path(forked["run"]).resolve() != src.resolve():
            raise UserError(f"{where}: {rd.root} was started from {forked['run']}; resume it with "
                            f"--from {forked['run']} or without --from")
        return
    if rd.manifest["iterations"]:
        raise UserError(f"{where}: {rd.root} already has stages of its own; --from only starts a new run "
                        f"(give it another name=<new name>, or drop --from to resume it)")
    source_cfg = load_config(src / "config.yaml")
    differ = differing_settings(source_cfg, cfg)
    if differ:
        listed = "; ".join(f"{k}: {a!r} there, {b!r} here" for k, (a, b) in differ.items())
        raise UserError(f"{where}: its stages before iteration 0 depend on settings this config changes ({listed}); "
                        f"use the same values, or start without --from")
    source_rd = RunDir(src)
    stages = shared_stages(cfg)
    missing = [f"{t}/{name}" for t, names in stages.items() for name in names if not source_rd.done(t, name)]
    if missing:
        raise UserError(f"{where}: has not finished {', '.join(missing)}; let it get past them (or resume it), "
                        f"then start this run")
    source_rd.verify()  # its files are what its manifest says, before they become this run's

    rd.root.mkdir(parents=True, exist_ok=True)
    copied = ["instructions.jsonl", "eval_base"] + (["bootstrap"] if "bootstrap" in stages else [])
    for name in copied:
        path = src / name
        if path.is_dir():
            shutil.copytree(path, rd.root / name, dirs_exist_ok=True)
        elif path.is_file():
            shutil.copy2(path, rd.root / name)
    entries: dict[str, dict] = {}
    for t, names in stages.items():
        for name in names:
            entry = dict(source_rd.stage(t, name), copied_from=str(src))
            model = entry.get("model")
            if isinstance(model, str) and src.resolve() in Path(model).resolve().parents:
                entry["model"] = str(rd.root / Path(model).resolve().relative_to(src.resolve()))  # the copy
            entries.setdefault(t, {})[name] = entry
    rd.adopt(entries, {"run": str(src), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    rd.verify()
