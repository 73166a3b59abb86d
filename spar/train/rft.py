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

from pathlib import Path
from typing import Sequence

from spar.config import RFTSettings
from spar.records import RFTExample, to_dict
from spar.train.common import build_trainer, entry, train

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
    return train("spar.train.rft", build_rft_trainer, model, [to_dict(e) for e in examples], out_dir, settings)


def _to_row(row: dict) -> dict:
    return to_prompt_completion(RFTExample(**row))


def build_rft_trainer(model_dir: Path, data_file: Path, out_dir: Path, s: RFTSettings):
    """An SFTTrainer over the RFTExample records in `data_file`, loss on each chat's last turn only."""
    from trl import SFTConfig, SFTTrainer

    return build_trainer(SFTTrainer, SFTConfig, s, model_dir, data_file, out_dir, _to_row, completion_only_loss=True)


def main() -> None:
    entry(build_rft_trainer, RFTSettings, RFTExample,
          "RFT on an rft JSONL (RFTExample records); the entry `accelerate launch` runs", "examples",
          check=to_prompt_completion)


if __name__ == "__main__":
    main()
