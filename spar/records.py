"""Typed records that stages pass to each other, and their JSONL files.

Every stage of the self-play loop reads and writes one kind of record, one
JSON object per line, whose keys are the dataclass fields below
(ARCHITECTURE.md, "Records"). Two rules keep files safe across crashes:

* appends go through :class:`JsonlAppender`, which flushes every line and,
  on opening, cuts off a half-written last line left by a crash;
* a file that must appear whole is written by :func:`write_jsonl` to a
  temporary name and renamed into place.

Pure Python: no torch, nothing heavy.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

from spar.errors import UserError

Message = dict[str, str]  # {"role": "user" | "assistant" | "system", "content": str}


@dataclass
class Instruction:
    """An instruction to follow; `constraints` are `{id, kwargs}` entries.

    Ids in the constraint library are checked by code; ids starting with
    `soft:` (style, sentiment, situation, ...) are left to the LLM judge.
    """

    id: str
    prompt: str
    constraints: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    split: str = "train"


@dataclass
class Response:
    """The `index`-th sampled answer of `model` to an instruction."""

    instruction_id: str
    index: int
    text: str
    model: str = ""
    truncated: bool = False  # cut by max_new_tokens: never a chosen response by default

    @property
    def id(self) -> str:
        return f"{self.instruction_id}#{self.index}"


@dataclass
class Judgment:
    """Votes of the judge on one response; value = yes / (yes + no)."""

    instruction_id: str
    response_id: str
    votes: list[dict[str, Any]] = field(default_factory=list)  # {verdict, critique, truncated}
    value: float | None = None
    label: str = "abstain"  # "yes" | "no" | "abstain"
    verifier: dict[str, Any] | None = None  # {passed, failed: [ids], feedback}
    critique: str = ""  # a critique that agrees with the majority


@dataclass
class Negative:
    """A response judged wrong, chosen as the root of a refinement tree."""

    instruction_id: str
    response_id: str
    text: str
    critique: str = ""
    votes: list[dict[str, Any]] = field(default_factory=list)  # {verdict, critique, truncated}
    value: float | None = None


@dataclass
class Tree:
    """A refinement tree grown from one negative response (search/)."""

    instruction_id: str
    root: str
    nodes: list[dict[str, Any]] = field(default_factory=list)
    strategy: str = "bfs"
    success: bool = False
    best: str | None = None
    calls: dict[str, int] = field(default_factory=dict)  # {"refine": .., "judge": ..}


@dataclass
class Pair:
    """A preference pair for DPO: `chosen` and `rejected` answer `prompt`."""

    instruction_id: str
    prompt: list[Message]
    chosen: str
    rejected: str
    source: str = "refinement"  # "refinement" | "sampled" | ...
    edit_distance: int | None = None

    def to_trl(self) -> dict[str, Any]:
        """TRL's conversational preference format."""
        return {
            "prompt": self.prompt,
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
        }


@dataclass
class RFTExample:
    """A chat the refiner produced and that proved right: trained on by SFT."""

    messages: list[Message]
    kind: str  # "judge" | "refine"
    source: str = ""  # "tree" (refine) | "tree-node" | "judge-stage" (judge)
    label: str = ""  # the verdict a judge example teaches: "yes" | "no"; "" for refine


class RecordError(UserError):
    """A JSONL line that is not a valid record; the message names file:line."""


R = TypeVar("R")


def to_dict(record: Any) -> dict[str, Any]:
    return dataclasses.asdict(record) if dataclasses.is_dataclass(record) else dict(record)


def from_dict(cls: type[R], obj: Any, where: str = "") -> R:
    """Build `cls` from a dict, naming `where` (file:line) in any error."""
    if not isinstance(obj, dict):
        raise RecordError(f"{where}: expected a JSON object for {cls.__name__}, got {type(obj).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    required = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - obj.keys())
    if missing:
        raise RecordError(
            f"{where}: {cls.__name__} is missing field(s) {missing}; "
            f"a {cls.__name__} line needs {sorted(required)}"
        )
    return cls(**{k: v for k, v in obj.items() if k in names})


def iter_jsonl(path: str | os.PathLike, cls: type[R] | None = None) -> Iterator[Any]:
    """Yield the objects (or `cls` records) of a JSONL file.

    Blank lines are skipped. A last line without its newline that does not
    parse is a write cut short by a crash and is dropped; any other bad line
    raises :class:`RecordError` naming file:line.
    """
    path = Path(path)
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        is_torn_tail = lineno == len(lines) and not data.endswith(b"\n")
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            if is_torn_tail:
                return
            raise RecordError(f"{where}: not valid JSON ({e.msg if hasattr(e, 'msg') else e}); fix or delete this line") from None
        yield from_dict(cls, obj, where) if cls is not None else obj


def keys_in(path: str | os.PathLike, field: str) -> set:
    """The values of `field` in an output file so far: what a rerun skips (empty when no file)."""
    return {obj[field] for obj in iter_jsonl(path)} if Path(path).exists() else set()


def read_jsonl(path: str | os.PathLike, cls: type[R] | None = None) -> list[Any]:
    return list(iter_jsonl(path, cls))


def read_instructions(path: str | os.PathLike) -> list[Instruction]:
    """The Instruction records of a file, in order, each checked; errors name file:line.

    A repeated id is refused: every later record (responses, judgments,
    trees) is keyed by it, so two instructions sharing one would be merged.
    """
    records = read_jsonl(path, Instruction)
    # the file line of each record: the reader skips blank lines
    lines = [n for n, raw in enumerate(Path(path).read_bytes().split(b"\n"), start=1) if raw.strip()]
    seen: dict[str, int] = {}
    for lineno, inst in zip(lines, records):
        where = f"{path}:{lineno}"
        if not isinstance(inst.id, str) or not inst.id:
            raise RecordError(f"{where}: id {inst.id!r} must be a non-empty string, e.g. \"{inst.id}\"")
        if inst.id in seen:
            raise RecordError(f"{where}: id {inst.id!r} repeats line {seen[inst.id]}; every instruction needs "
                              f"its own id (the records made from it are keyed by it)")
        seen[inst.id] = lineno
        if not isinstance(inst.prompt, str):
            raise RecordError(f"{where}: prompt must be a string, got {type(inst.prompt).__name__}")
        if not isinstance(inst.split, str):
            raise RecordError(f"{where}: split must be a string (train or heldout), got {inst.split!r}")
        if not isinstance(inst.constraints, list) or not all(
            isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("kwargs", {}), (dict, type(None)))
            for c in inst.constraints
        ):
            raise RecordError(f"{where}: constraints must be a list of {{\"id\": \"...\", \"kwargs\": {{...}}}} "
                              f"objects, got {repr(inst.constraints)[:120]}")
    return records


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> Path:
    """Write a whole file atomically: a reader sees the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(to_dict(r), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


class JsonlAppender:
    """Append records to a JSONL file, one flushed line at a time.

    Opening repairs the file: a torn last line (no newline, not valid JSON)
    from a crash is cut off, so the next append starts on a clean line.

        with JsonlAppender(out) as w:
            w.write(record)
    """

    def __init__(self, path: str | os.PathLike, fsync: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        _drop_torn_tail(self.path)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, record: Any) -> None:
        self._f.write(json.dumps(to_dict(record), ensure_ascii=False) + "\n")
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _drop_torn_tail(path: Path) -> None:
    if not path.exists():
        return
    with open(path, "rb+") as f:
        data = f.read()
        if not data or data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1  # 0 when the whole file is one torn line
        try:
            json.loads(data[cut:])
        except ValueError:
            f.truncate(cut)  # a write cut short: drop it
        else:
            f.write(b"\n")  # a whole record that only lacks its newline
