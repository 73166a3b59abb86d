"""Loader for IFEval-format data (`key`, `prompt`, `instruction_id_list`, `kwargs`).

    rows = load_ifeval("path/to/input_data.jsonl")
    rows = load_ifeval("hf:google/IFEval")   # needs a network and `datasets`

This is evaluation data: score on it, never train on it. The hub copy pads
every kwargs dict with nulls for the kwargs an instruction does not take;
nulls are treated as absent. Every row is validated against the constraint
library, and an error names file:line and the instruction id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spar.constraints import get
from spar.errors import UserError
from spar.records import Instruction, RecordError, iter_lines


@dataclass
class IFEvalRow:
    key: int | str
    prompt: str
    instruction_id_list: list[str]
    kwargs: list[dict[str, Any]] = field(default_factory=list)

    def to_instruction(self) -> Instruction:
        return Instruction(
            id=f"ifeval-{self.key}",
            prompt=self.prompt,
            constraints=[{"id": i, "kwargs": k} for i, k in zip(self.instruction_id_list, self.kwargs)],
            source="ifeval",
            split="eval",
        )


def load_ifeval(source: str | Path) -> list[IFEvalRow]:
    if str(source).startswith("hf:"):
        return _from_hub(str(source)[3:])
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"IFEval data {path} not found; give the path of an IFEval-format JSONL file")
    rows = [parse_row(obj, where) for where, obj in iter_lines(path)]
    if not rows:
        raise RecordError(f"{path}: no IFEval rows (the file is empty or holds only blank lines); each line needs "
                          f"key, prompt, instruction_id_list and kwargs")
    return rows


def parse_row(obj: Any, where: str) -> IFEvalRow:
    if not isinstance(obj, dict):
        raise RecordError(f"{where}: expected a JSON object")
    missing = [k for k in ("key", "prompt", "instruction_id_list", "kwargs") if k not in obj]
    if missing:
        raise RecordError(f"{where}: IFEval row lacks {missing}")
    ids, kwargs = obj["instruction_id_list"], obj["kwargs"]
    if not isinstance(ids, list) or not isinstance(kwargs, list) or len(ids) != len(kwargs):
        raise RecordError(f"{where}: instruction_id_list and kwargs must be lists of the same length")
    if not isinstance(obj["prompt"], str):
        raise RecordError(f"{where}: prompt must be a string, got {type(obj['prompt']).__name__}")
    if isinstance(obj["key"], bool) or not isinstance(obj["key"], (int, str)):
        raise RecordError(f"{where}: key must be an integer or a string, got {obj['key']!r}")
    if not all(isinstance(i, str) for i in ids) or not all(isinstance(k, dict) or k is None for k in kwargs):
        raise RecordError(f"{where}: instruction_id_list must hold strings and kwargs objects (or null)")
    clean = []
    for cid, kw in zip(ids, kwargs):
        try:
            clean.append(get(cid).validate(kw))
        except (KeyError, ValueError) as e:
            msg = e.args[0] if e.args else str(e)
            raise RecordError(f"{where}: {msg}") from None
    return IFEvalRow(key=obj["key"], prompt=obj["prompt"], instruction_id_list=list(ids), kwargs=clean)


def _from_hub(name: str) -> list[IFEvalRow]:
    try:
        import datasets
    except ImportError:
        # the user's environment, not a bug: say what to install
        raise UserError("loading hf:... needs `pip install datasets` and a network; "
                        "or pass a local JSONL path") from None
    ds = datasets.load_dataset(name, split="train")
    return [parse_row(dict(row), f"hf:{name}[{i}]") for i, row in enumerate(ds)]
