"""The actor's training: DPO on refinement pairs, over TRL's DPOTrainer.

    train_dpo(model_dir, pairs, out_dir, DPOSettings())            # in this process
    python -m spar.train.dpo --data pairs.jsonl --model DIR --out DIR --settings s.json   # what accelerate launches

Chosen is the refinement judged right, rejected the root negative it came
from (Pair.to_trl()). The paper's loss is DPO (beta 0.1) plus an SFT term
on chosen with weight 0.1: TRL's `loss_type=["sigmoid", "sft"]` with
`loss_weights=[1, 0.1]`; lr 2e-7, one epoch.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Sequence

from spar.records import Pair, read_jsonl
from spar.config import DPOSettings
from spar.train.common import dataset_in, fresh_work_dir, launch, machine_args, peft_config, save_checkpoint, summarize, work_dir


def train_dpo(model_dir: str | Path, pairs: Sequence[Pair], out_dir: str | Path, settings: DPOSettings,
              data_file: str | Path | None = None) -> Path:
    """Train `model_dir` on `pairs`, save to `out_dir`; through accelerate when asked (needs `data_file`)."""
    if not pairs:
        raise ValueError("DPO needs at least one preference pair; the search found none this iteration")
    fresh_work_dir(Path(out_dir))
    if settings.num_processes > 1 or settings.accelerate_config:
        if data_file is None:
            raise ValueError("multi-process training reads the pairs from a file: pass data_file")
        return launch("spar.train.dpo", Path(data_file), Path(model_dir), Path(out_dir), settings,
                      settings.num_processes, settings.accelerate_config)
    return _train(Path(model_dir), list(pairs), Path(out_dir), settings)


def _train(model_dir: Path, pairs: list[Pair], out_dir: Path, s: DPOSettings) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    loss_type, weights = (["sigmoid", "sft"], [1.0, s.sft_weight]) if s.sft_weight else (["sigmoid"], [1.0])
    args = DPOConfig(
        output_dir=str(work_dir(out_dir)),
        beta=s.beta, loss_type=loss_type, loss_weights=weights, learning_rate=s.lr, num_train_epochs=s.epochs,
        per_device_train_batch_size=s.batch_size, gradient_accumulation_steps=s.grad_accum, max_length=s.max_length,
        warmup_steps=s.warmup_steps, precompute_ref_log_probs=s.precompute_ref_log_probs, **machine_args(s.seed),
    )
    dataset = dataset_in(args.output_dir, [p.to_trl() for p in pairs])
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config(s.lora))
    trainer.train()
    return save_checkpoint(trainer, tokenizer, model_dir, out_dir, summarize(trainer, started, len(pairs)))


def main() -> None:
    ap = argparse.ArgumentParser(description="DPO on a pairs.jsonl (the entry `accelerate launch` runs)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--settings", required=True, help="JSON of DPOSettings")
    a = ap.parse_args()
    s = DPOSettings(**json.loads(Path(a.settings).read_text()))
    _train(Path(a.model), read_jsonl(a.data, Pair), Path(a.out), s)


if __name__ == "__main__":
    main()
