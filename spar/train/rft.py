"""The refiner's training: RFT, supervised fine-tuning on its own outputs that proved right, over TRL's SFTTrainer.

    train_rft(model_dir, examples, out_dir, RFTSettings())   # in this process, or launched when settings ask
    python -m spar.train.rft --examples rft.jsonl --model DIR --out DIR [--settings s.json]

Each RFTExample is a chat whose last turn is the refiner's answer (a
judgment, or a refinement). It is trained as prompt = every turn before,
completion = the last turn, so the loss falls on that answer only: the
system and user turns, and an earlier assistant turn that is context (the
critique a refine chat asks the refiner to act on, which was not what
proved right), are masked. Paper: lr 2e-6, 5 epochs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from spar.config import RFTSettings
from spar.records import RFTExample, read_jsonl, to_dict
from spar.train.common import (load_for_training, load_rows, machine_args, peft_config, resolve_model,
                               save_checkpoint, schedule_args, summarize, work_dir, write_data)
from spar.train.launch import entry_args, launch, read_settings, wanted

__all__ = ["RFTSettings", "train_rft", "build_rft_trainer", "to_prompt_completion"]


def to_prompt_completion(example: RFTExample, where: str = "") -> dict:
    """The chat as TRL's conversational prompt-completion row: the final assistant turn is the completion."""
    messages = example.messages
    if len(messages) < 2 or messages[-1].get("role") != "assistant":
        raise ValueError(f"{where or 'RFT example'}: an RFT example must be a chat ending with the refiner's "
                         f"(assistant) turn after at least one turn of input; got roles "
                         f"{[m.get('role') for m in messages]}")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def train_rft(model: str | Path, examples: Sequence[RFTExample], out_dir: str | Path, settings: RFTSettings,
              data_file: str | Path | None = None) -> Path:
    """Train `model` (a directory or spar model name) on `examples` and save the result to `out_dir`.

    (`data_file` is accepted for callers that already wrote the examples; a
    copy is written beside `out_dir` either way.)
    """
    if not examples:
        raise ValueError("RFT needs at least one example; no refiner output proved right this iteration")
    for k, e in enumerate(examples):
        to_prompt_completion(e, f"RFT example {k}")  # refuse bad chats before a model is loaded
    base, out_dir = resolve_model(model), Path(out_dir)
    data = write_data(out_dir, [to_dict(e) for e in examples])
    if wanted(settings):
        return launch("spar.train.rft", data, base, out_dir, settings)
    return _train(base, data, out_dir, settings)


def _to_row(row: dict) -> dict:
    return to_prompt_completion(RFTExample(**row))


def build_rft_trainer(model_dir: Path, data_file: Path, out_dir: Path, s: RFTSettings):
    """An SFTTrainer over the RFTExample records in `data_file`, loss on each chat's last turn only."""
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = load_for_training(model_dir)
    args = SFTConfig(
        output_dir=str(work_dir(out_dir) / "trainer"),
        learning_rate=s.lr, num_train_epochs=s.epochs, per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum, max_length=s.max_length, completion_only_loss=True,
        **schedule_args(s), **machine_args(s.seed),
    )
    rows = load_rows(data_file, out_dir)
    dataset = rows.map(_to_row, remove_columns=rows.column_names)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config(s.lora))
    return trainer, tokenizer


def _train(model_dir: Path, data_file: Path, out_dir: Path, s: RFTSettings) -> Path:
    started = time.time()
    trainer, tokenizer = build_rft_trainer(model_dir, data_file, out_dir, s)
    result = trainer.train()
    metrics = summarize(trainer, started, len(trainer.train_dataset), result.metrics["train_runtime"])
    return save_checkpoint(trainer, tokenizer, model_dir, out_dir, metrics)


def main() -> None:
    a = entry_args("RFT on an rft JSONL (RFTExample records); the entry `accelerate launch` runs", "examples")
    for k, e in enumerate(read_jsonl(a.data, RFTExample), 1):  # bad lines stop here, named file:line
        to_prompt_completion(e, f"{a.data} record {k}")
    _train(resolve_model(a.model), Path(a.data), Path(a.out), read_settings(a.settings, RFTSettings))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as e:  # bad data or settings: one line, not a traceback per process
        raise SystemExit(f"error: {e}") from None
