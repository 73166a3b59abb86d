"""The run directory, its manifest, and how a stage resumes.

    runs/<name>/config.yaml  manifest.json  instructions.jsonl
    runs/<name>/iter_<t>/responses.jsonl judgments.jsonl negatives.jsonl trees.jsonl pairs.jsonl rft.jsonl
                        actor/ refiner/ eval/

A stage writes `<file>.partial` chunk by chunk and renames it to `<file>`
when complete; a finished file is never recomputed. Chunks have fixed
boundaries and seeds (chunk c of a stage always holds the same inputs and
samples with the same seed), so a stage resumed after a crash gives the
same records as one that never stopped: on restart, the records of a chunk
that was cut short are dropped and the chunk runs again. The verbs
(`spar generate`, `spar judge`, `spar search`) resume through the same
`run_chunked`, appending to their --out file instead.

The manifest records each finished stage's file with its sha256; a rerun
verifies them (`RunDir.verify`) before it reads any, and records settings
changed on resume (`RunDir.note_config_change`; which may change is listed
in spar/config.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable, Sequence

from spar.errors import UserError
from spar.records import JsonlAppender, iter_jsonl, to_dict


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)  # created by the first write: a run refused before it starts leaves nothing behind
        self.manifest_path = self.root / "manifest.json"
        exists = self.manifest_path.exists()
        self.manifest = json.loads(self.manifest_path.read_text()) if exists else {"iterations": {}}

    def iter_dir(self, t: int) -> Path:
        d = self.root / f"iter_{t}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def stage(self, t: int | str, name: str) -> dict:
        return self.manifest["iterations"].get(str(t), {}).get(name, {})

    def done(self, t: int | str, name: str) -> bool:
        return self.stage(t, name).get("status") == "done"

    def record(self, t: int | str, name: str, **info) -> None:
        """Mark a stage done with its counts, timing and the checksum of its output."""
        entry = {"status": "done", **info}
        if "file" in info and Path(info["file"]).is_file():
            entry["sha256"] = hashlib.sha256(Path(info["file"]).read_bytes()).hexdigest()
            entry["file"] = str(Path(info["file"]).relative_to(self.root))
        self.manifest["iterations"].setdefault(str(t), {})[name] = entry
        self._save()

    def note_config_change(self, changes: dict[str, tuple]) -> None:
        """Record settings changed on resume (ones that cannot change results): what, from, to, and when."""
        self.manifest.setdefault("config_changes", []).append({
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "changes": {k: {"old": old, "new": new} for k, (old, new) in changes.items()},
        })
        self._save()

    def adopt(self, entries: dict[str, dict[str, dict]], forked_from: dict) -> None:
        """Take finished stages from another run (`spar run --from`, spar/selfplay/fork.py), entries as given."""
        for t, stages in entries.items():
            self.manifest["iterations"].setdefault(t, {}).update(stages)
        self.manifest["forked_from"] = forked_from
        self._save()

    def verify(self) -> None:
        """Check every finished stage's output against the checksum recorded when it finished.

        A stage's file edited (or lost) afterwards would otherwise be read by
        the stages after it as if it were the run's own output.
        """
        for t, stages in self.manifest["iterations"].items():
            for name, entry in stages.items():
                if entry.get("status") != "done" or "file" not in entry or "sha256" not in entry:
                    continue
                path = self.root / entry["file"]
                where = f"iteration {t}" if t.isdigit() else f"the {t} stages"
                forget = (f"delete it and the '{name}' entry of {where} in {self.manifest_path} (and the entries "
                          f"of the stages after it, which read it) so the run computes it again")
                if not path.is_file():
                    raise UserError(f"{path}: missing, but the '{name}' stage of {where} finished writing it; "
                                    f"restore the file, or {forget.replace('delete it and', 'delete')}")
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                if digest != entry["sha256"]:
                    raise UserError(f"{path}: changed after the '{name}' stage of {where} finished (sha256 "
                                    f"{digest[:12]}..., recorded {entry['sha256'][:12]}...); restore the file, or "
                                    f"{forget}, or start a new run with name=<new name>")

    def _save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_name("manifest.json.tmp")
        tmp.write_text(json.dumps(self.manifest, indent=2))
        os.replace(tmp, self.manifest_path)


def run_chunked(
    items: Sequence,
    key: Callable[[object], str],
    out: Path,
    chunk: int,
    process: Callable[[list, int], list],
    record_key: Callable[[dict], str],
    progress=None,
    *,
    append: bool = False,
) -> Path:
    """Run `process(chunk_items, chunk_index) -> records` over fixed chunks of `items` into `out`, resumably.

    Chunk c always holds `items[c * chunk : (c + 1) * chunk]` and `process`
    derives its seed from c, so where a run stopped never changes what a
    chunk holds. `key(item)` / `record_key(record)` tie records to inputs:
    an item with records in the file is done, and a chunk runs with the
    items not done yet - all of them, unless the inputs grew since an
    earlier run or the file was cut by hand inside a chunk.

    After a chunk's records are flushed, the file's length goes to
    `<out>.chunks`; a rerun first cuts the file back to the last length
    there, so a chunk cut short by a crash leaves nothing and runs again
    whole. The ledger is removed once every chunk is done.

    `append=False` (the loop's stages): records go to `<out>.partial`,
    renamed to `out` when complete; an existing `out` is final.
    `append=True` (the verbs): records are appended to `out` itself, after
    those of earlier runs, and the file is created at the first record.
    """
    if out.exists() and not append:
        return out
    target = out if append else out.with_name(out.name + ".partial")
    ledger = out.with_name(out.name + ".chunks")
    _restore(target, ledger, append)
    done = _done_keys(target, record_key)
    chunks = [list(items[i : i + chunk]) for i in range(0, len(items), chunk)]
    fresh, writing = not ledger.exists(), False
    if fresh:
        _commit(ledger, target)  # where this run's records begin, for a crash inside the first chunk
    try:
        with JsonlAppender(target, lazy=append) as w:
            for c, ch in enumerate(chunks):
                todo = [x for x in ch if key(x) not in done]
                if todo:
                    records = process(todo, c)
                    writing = True
                    for r in records:
                        w.write(r)
                    _commit(ledger, target)
                if progress:
                    progress(len(ch))
    except BaseException:
        if fresh and not writing:  # failed before writing anything (a server down): nothing to resume from
            ledger.unlink(missing_ok=True)
        raise
    if not append:
        os.replace(target, out)
    ledger.unlink(missing_ok=True)
    return out


def unfinished(items: Sequence, key: Callable[[object], str], out: Path, record_key: Callable[[dict], str]) -> list:
    """The items `run_chunked(..., append=True)` would still process into `out`, in order: what a verb checks
    before it loads a model (records of a chunk cut short by a crash do not count; the rerun drops them)."""
    limit = _committed(out.with_name(out.name + ".chunks"), out)
    done = _done_keys(out, record_key, limit)
    return [x for x in items if key(x) not in done]


def _restore(target: Path, ledger: Path, append: bool) -> None:
    """Cut `target` back to its last whole chunk before a rerun appends to it.

    Without a usable ledger an append target is kept as it is (its torn last
    line cut off); a `.partial` is not trusted and starts over.
    """
    length = _committed(ledger, target)
    if length is not None:
        with open(target, "rb+") as f:
            f.truncate(length)
        ledger.write_text(f"{length}\n")
        return
    ledger.unlink(missing_ok=True)
    if append and target.exists():
        JsonlAppender(target).close()  # opening repairs a torn last line
    elif not append:
        target.unlink(missing_ok=True)


def _committed(ledger: Path, target: Path) -> int | None:
    """The length `target` had after its last whole chunk, per `ledger`; None without a usable ledger."""
    if not ledger.exists() or not target.exists():
        return None
    lengths = ledger.read_text().split()
    if not lengths or not lengths[-1].isdigit():
        return None
    length = int(lengths[-1])
    with open(target, "rb") as f:
        data = f.read(length)
    if len(data) < length or (length and not data.endswith(b"\n")):
        return None  # not a line boundary of this file: a ledger of another file, or of an older format
    return length


def _commit(ledger: Path, target: Path) -> None:
    with open(ledger, "a") as f:
        f.write(f"{target.stat().st_size if target.exists() else 0}\n")


def _done_keys(path: Path, record_key: Callable[[dict], str], limit: int | None = None) -> set:
    """The keys of the records in `path` (in its first `limit` bytes, whole lines this code wrote, if given)."""
    if not path.exists():
        return set()
    if limit is None:
        return {record_key(r) for r in iter_jsonl(path)}
    with open(path, "rb") as f:
        return {record_key(json.loads(line)) for line in f.read(limit).splitlines() if line.strip()}


class Timer:
    def __enter__(self):
        self.start = time.time()
        return self

    def __exit__(self, *exc):
        self.seconds = round(time.time() - self.start, 1)


__all__ = ["RunDir", "run_chunked", "unfinished", "Timer", "to_dict"]
