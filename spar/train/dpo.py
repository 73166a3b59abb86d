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

import time
from pathlib import Path
from typing import Sequence

from spar.config import DPOSettings
from spar.records import Pair, read_jsonl, to_dict
from spar.train.common import (load_for_training, load_rows, machine_args, peft_config, resolve_model,
                               save_checkpoint, schedule_args, summarize, work_dir, write_data)
from spar.train.launch import entry_args, launch, read_settings, wanted

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
    base, out_dir = resolve_model(model), Path(out_dir)
    data = write_data(out_dir, [to_dict(p) for p in pairs])
    if wanted(settings):
        return launch("spar.train.dpo", data, base, out_dir, settings)
    return _train(base, data, out_dir, settings)


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

    model, tokenizer = load_for_training(model_dir)
    loss_type, weights = (["sigmoid", "sft"], [1.0, s.sft_weight]) if s.sft_weight else (["sigmoid"], [1.0])
    args = DPOConfig(
        output_dir=str(work_dir(out_dir) / "trainer"),
        beta=s.beta, loss_type=loss_type, loss_weights=weights, learning_rate=s.lr, num_train_epochs=s.epochs,
        per_device_train_batch_size=s.batch_size, gradient_accumulation_steps=s.grad_accum, max_length=s.max_length,
        precompute_ref_log_probs=precompute_ref(s), **schedule_args(s), **machine_args(s.seed),
    )
    rows = load_rows(data_file, out_dir)
    dataset = rows.map(_to_trl, remove_columns=rows.column_names)
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config(s.lora))
    return trainer, tokenizer


def _to_trl(row: dict) -> dict:
    return Pair(**row).to_trl()


def _train(model_dir: Path, data_file: Path, out_dir: Path, s: DPOSettings) -> Path:
    started = time.time()
    trainer, tokenizer = build_dpo_trainer(model_dir, data_file, out_dir, s)
    result = trainer.train()
    metrics = summarize(trainer, started, len(trainer.train_dataset), result.metrics["train_runtime"])
    return save_checkpoint(trainer, tokenizer, model_dir, out_dir, metrics)


def main() -> None:
    a = entry_args("DPO on a pairs JSONL (Pair records); the entry `accelerate launch` runs", "pairs")
    read_jsonl(a.data, Pair)  # bad lines stop here, named file:line, before a model is loaded
    _train(resolve_model(a.model), Path(a.data), Path(a.out), read_settings(a.settings, DPOSettings))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as e:  # bad data or settings: one line, not a traceback per process
        raise SystemExit(f"error: {e}") from None
