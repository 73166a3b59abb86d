"""The refiner's training: RFT, supervised fine-tuning on its own outputs that proved right.

    train_rft(model_dir, examples, out_dir, RFTSettings())
    python -m spar.train.rft --data rft.jsonl --model DIR --out DIR --settings s.json   # under accelerate

Each RFTExample is a chat whose last turn is the refiner's (a judgment or a
refinement). It is trained as prompt = every turn before, completion = the
last turn, so the loss falls on the refiner's own answer only. Paper: lr
2e-6, 5 epochs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Sequence

from spar.records import RFTExample, read_jsonl
from spar.config import RFTSettings
from spar.train.common import dataset_in, fresh_work_dir, launch, machine_args, peft_config, save_checkpoint, summarize, work_dir


def to_prompt_completion(example: RFTExample) -> dict:
    messages = example.messages
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError(f"an RFT example must end with the refiner's (assistant) turn; got {messages[-1:]!r}")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def train_rft(model_dir: str | Path, examples: Sequence[RFTExample], out_dir: str | Path, settings: RFTSettings,
              data_file: str | Path | None = None) -> Path:
    if not examples:
        raise ValueError("RFT needs at least one example; no refiner output proved right this iteration")
    fresh_work_dir(Path(out_dir))
    if settings.num_processes > 1 or settings.accelerate_config:
        if data_file is None:
            raise ValueError("multi-process training reads the examples from a file: pass data_file")
        return launch("spar.train.rft", Path(data_file), Path(model_dir), Path(out_dir), settings,
                      settings.num_processes, settings.accelerate_config)
    return _train(Path(model_dir), list(examples), Path(out_dir), settings)


def _train(model_dir: Path, examples: list[RFTExample], out_dir: Path, s: RFTSettings) -> Path:
    started = time.time()
    trainer, tokenizer = build_trainer(model_dir, examples, out_dir, s)
    trainer.train()
    return save_checkpoint(trainer, tokenizer, model_dir, out_dir, summarize(trainer, started, len(examples)))


def build_trainer(model_dir: Path, examples: list[RFTExample], out_dir: Path, s: RFTSettings):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    args = SFTConfig(
        output_dir=str(work_dir(out_dir)),
        learning_rate=s.lr, num_train_epochs=s.epochs, per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum, max_length=s.max_length, warmup_steps=s.warmup_steps,
        completion_only_loss=True, **machine_args(s.seed),
    )
    dataset = dataset_in(args.output_dir, [to_prompt_completion(e) for e in examples])
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config(s.lora))
    return trainer, tokenizer


def main() -> None:
    ap = argparse.ArgumentParser(description="RFT on an rft.jsonl (the entry `accelerate launch` runs)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--settings", required=True, help="JSON of RFTSettings")
    a = ap.parse_args()
    s = RFTSettings(**json.loads(Path(a.settings).read_text()))
    _train(Path(a.model), read_jsonl(a.data, RFTExample), Path(a.out), s)


if __name__ == "__main__":
    main()
