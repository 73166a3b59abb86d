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
import types
import typing
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
    """Build `cls` from a dict, naming `where` (file:line) in any error.

    Every field's value is checked against its annotation (`index` an
    integer, `votes` a list of objects, ...): a record of the wrong shape is
    refused where it is read, not deep inside the stage that uses it.
    """
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
    hints = _hints(cls)
    for key in names & obj.keys():
        if not _conforms(obj[key], hints[key]):
            raise RecordError(f"{where}: {cls.__name__} field {key!r} should be {_type_name(hints[key])}, got "
                              f"{_shown(obj[key])}; fix this line")
    return cls(**{k: v for k, v in obj.items() if k in names})


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _conforms(value: Any, tp: Any) -> bool:
    """Whether a JSON value fits a field annotation (str, int, float, bool, None, list[...], dict[...], unions)."""
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if origin is list or tp is list:
        return isinstance(value, list) and (not args or all(_conforms(v, args[0]) for v in value))
    if origin is dict or tp is dict:
        return isinstance(value, dict) and (not args or all(_conforms(v, args[1]) for v in value.values()))
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, tp)


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is list:
        return f"a list of {_type_name(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    if origin is dict or tp is dict:
        return "an object"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false", type(None): "null",
            Any: "any value"}.get(tp, getattr(tp, "__name__", str(tp)))


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def iter_jsonl(path: str | os.PathLike, cls: type[R] | None = None) -> Iterator[Any]:
    """Yield the objects (or `cls` records) of a JSONL file.

    Blank lines are skipped. A last line without its newline that does not
    parse is a write cut short by a crash and is dropped; any other bad line
    raises :class:`RecordError` naming file:line.
    """
    for where, obj in iter_lines(path):
        yield from_dict(cls, obj, where) if cls is not None else obj


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[str, Any]]:
    """(`file:line`, object) for each record of a JSONL file: the line as an editor counts it, blank lines
    included, for error messages that point at the right line."""
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
            raise RecordError(f"{where}: not valid JSON ({getattr(e, 'msg', e)}); fix or delete this line") from None
        yield where, obj


def keys_in(path: str | os.PathLike, field: str) -> set:
    """The values of `field` in an output file so far: what a rerun skips (empty when no file)."""
    return {obj[field] for obj in iter_jsonl(path)} if Path(path).exists() else set()


def read_jsonl(path: str | os.PathLike, cls: type[R] | None = None) -> list[Any]:
    return list(iter_jsonl(path, cls))


def read_instructions(path: str | os.PathLike, allow_empty: bool = False) -> list[Instruction]:
    """The Instruction records of a file, in order, each checked; errors name file:line.

    A repeated id is refused: every later record (responses, judgments,
    trees) is keyed by it, so two instructions sharing one would be merged.
    Every constraint is checked against the constraint library (a known id,
    kwargs of the right names and types; `soft:` ids are the LLM judge's),
    so a typo stops the command here, before any model loads, and not after
    the generation it would have wasted. An empty file is refused unless
    `allow_empty`.
    """
    records = []
    seen: dict[str, str] = {}
    for where, obj in iter_lines(path):
        if isinstance(obj, dict):  # the fields every verb relies on, with their own fix-it messages
            if not isinstance(obj.get("id"), str) or not obj["id"]:
                raise RecordError(f"{where}: id {obj.get('id')!r} must be a non-empty string, e.g. \"task-1\"")
            if "prompt" in obj and not isinstance(obj["prompt"], str):
                raise RecordError(f"{where}: prompt must be a string, got {type(obj['prompt']).__name__}")
            if not isinstance(obj.get("split", ""), str):
                raise RecordError(f"{where}: split must be a string (train or heldout), got {obj['split']!r}")
            check_constraints(obj.get("constraints", []), where)
        inst = from_dict(Instruction, obj, where)
        if inst.id in seen:
            raise RecordError(f"{where}: id {inst.id!r} repeats line {seen[inst.id].rsplit(':', 1)[1]}; every "
                              f"instruction needs its own id (the records made from it are keyed by it)")
        seen[inst.id] = where
        records.append(inst)
    if not records and not allow_empty:
        raise RecordError(f"{path}: no instructions in the file; give a JSONL file with one Instruction record "
                          f"({{\"id\", \"prompt\", \"constraints\"}}) per line")
    return records


def check_constraints(constraints: Any, where: str) -> list[dict[str, Any]]:
    """`constraints` as a list of `{id, kwargs}` objects, each known to the constraint library with valid kwargs;
    a RecordError naming `where` (the record's file:line) and the constraint otherwise."""
    from spar.constraints import get, is_soft  # the same layer; imported late to keep records light

    if not isinstance(constraints, list) or not all(
            isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("kwargs", {}), (dict, type(None)))
            for c in constraints):
        raise RecordError(f"{where}: constraints must be a list of {{\"id\": \"...\", \"kwargs\": {{...}}}} "
                          f"objects, got {_shown(constraints)}")
    for k, c in enumerate(constraints):
        if is_soft(c["id"]):
            continue
        try:
            get(c["id"]).validate(c.get("kwargs"))
        except (KeyError, ValueError) as e:
            raise RecordError(f"{where}: constraints[{k}]: {e.args[0] if e.args else e}") from None
    return constraints


def refuse_overwrite(out: str | os.PathLike, flag: str, inputs: dict[str, Any], *,
                     directory: bool = False, writes: Iterable[str] = ()) -> None:
    """Refuse, before any work, an output that would destroy an input or cannot be written.

    `out` is given as `flag`; `inputs` maps each input's flag to its path
    (None: not given). A file output may not be an input, nor an existing
    directory; a `directory` output may not be an existing file, nor hold an
    input among the files it `writes` there.
    """
    target = Path(out)
    if directory:
        if target.exists() and not target.is_dir():
            raise UserError(f"{flag} {out}: is a file; give a directory (the outputs are {', '.join(writes)})")
        targets = [target / name for name in writes]
    else:
        if target.is_dir():
            raise UserError(f"{flag} {out}: is a directory; give a file path")
        targets = [target]
    for name, path in inputs.items():
        if not path:
            continue
        for t in targets:
            if _same_file(t, Path(path)):
                what = f"{flag} {out}" if t == target else f"{flag} {out} (it writes {t.name} there)"
                raise UserError(f"{what}: is also the {name} file ({path}); writing there would destroy it. "
                                f"Give another {flag} path")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def require_records(records: list, path: str | os.PathLike, what: str) -> list:
    """`records`, unless there are none: an empty input is a mistake (a wrong path or an unfinished export),
    never \"nothing to do\"."""
    if not records:
        raise RecordError(f"{path}: no {what} in the file (it is empty or holds only blank lines); "
                          f"give the file that holds them")
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

    def __init__(self, path: str | os.PathLike, fsync: bool = False, lazy: bool = False):
        """`lazy`: create the file at the first record, so work that fails before producing one (a server that is
        down, a model that does not load) leaves no empty output behind."""
        self.path = Path(path)
        self.fsync = fsync
        self._f = None
        if not lazy:
            self._open()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(self.path)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, record: Any) -> None:
        if self._f is None:
            self._open()
        self._f.write(json.dumps(to_dict(record), ensure_ascii=False) + "\n")
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
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
