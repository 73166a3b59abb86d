"""The actor's training: DPO on refinement pairs, over TRL's DPOTrainer.

    train_dpo(model_dir, pairs, out_dir, DPOSettings())      # in this process, or launched when settings ask
    python -m spar.train.dpo --pairs pairs.jsonl --model DIR --out DIR [--settings s.json]
    accelerate launch --num_processes 2 -m spar.train.dpo --pairs ...   # what launch() runs

Chosen is the refinement judged right, rejected the root negative it came
from, in TRL's conversational format (Pair.to_trl()). The paper's loss is
DPO (beta 0.1) plus an SFT term on chosen with weight 0.1 - TRL's
`loss_type=["sigmoid", "sft"]` with `loss_weights=[1, 0.1]` - at lr 2e-7
for one epoch.

Reference log-probs: the reference is the starting policy, so its
log-probs never change and can be computed in one no-grad pass before
training (`precompute_ref_log_probs`), which also frees the memory of a
second model. `"auto"` precomputes when training runs more than one epoch:
at one epoch the pass costs what it saves, and on this CPU it measured
slightly slower in wall time (benchmarks/bench_train.py). With LoRA the
reference is the policy with its adapters switched off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from spar.config import DPOSettings
from spar.records import Pair, to_dict
from spar.train.common import build_trainer, entry, train

__all__ = ["DPOSettings", "train_dpo", "build_dpo_trainer", "precompute_ref"]


def train_dpo(model: str | Path, pairs: Sequence[Pair], out_dir: str | Path, settings: DPOSettings,
              data_file: str | Path | None = None) -> Path:
    """Train `model` (a directory or spar model name) on `pairs` and save the result to `out_dir`.

    Runs in this process, or through `accelerate launch` when the settings
    name several processes or an accelerate config. (`data_file` is accepted
    for callers that already wrote the pairs; a copy is written beside
    `out_dir` either way, so the launched processes read what was passed.)
    """
    if not pairs:
        raise ValueError("DPO needs at least one preference pair; the search found none this iteration")
    return train("spar.train.dpo", build_dpo_trainer, model, [to_dict(p) for p in pairs], out_dir, settings)


def precompute_ref(s: DPOSettings) -> bool:
    """`precompute_ref_log_probs` resolved: true/false as given, "auto" = precompute when epochs > 1."""
    value = s.precompute_ref_log_probs
    if value == "auto":
        return s.epochs > 1
    if not isinstance(value, bool):
        raise ValueError(f"train.dpo.precompute_ref_log_probs={value!r}: must be true, false or auto")
    return value


def build_dpo_trainer(model_dir: Path, data_file: Path, out_dir: Path, s: DPOSettings):
    """A DPOTrainer over the pairs in `data_file` (Pair records), set up for this machine."""
    from trl import DPOConfig, DPOTrainer

    loss_type, weights = (["sigmoid", "sft"], [1.0, s.sft_weight]) if s.sft_weight else (["sigmoid"], [1.0])
    return build_trainer(DPOTrainer, DPOConfig, s, model_dir, data_file, out_dir, _to_trl, beta=s.beta,
                         loss_type=loss_type, loss_weights=weights, precompute_ref_log_probs=precompute_ref(s))


def _to_trl(row: dict) -> dict:
    return Pair(**row).to_trl()


def main() -> None:
    entry(build_dpo_trainer, DPOSettings, Pair,
          "DPO on a pairs JSONL (Pair records); the entry `accelerate launch` runs", "pairs")


if __name__ == "__main__":
    main()
