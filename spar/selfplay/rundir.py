"""The run directory, its manifest, and how a stage resumes.

    runs/<name>/config.yaml  manifest.json  instructions.jsonl
    runs/<name>/iter_<t>/responses.jsonl judgments.jsonl negatives.jsonl trees.jsonl pairs.jsonl rft.jsonl
                        actor/ refiner/ eval/

A stage writes `<file>.partial` chunk by chunk and renames it to `<file>`
when complete; a finished file is never recomputed. Chunks have fixed
boundaries and seeds (chunk c of a stage always holds the same inputs and
samples with the same seed), so a stage resumed after a crash gives the
same records as one that never stopped: on restart, the records of a chunk
that was cut short are dropped and the chunk runs again.

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
from spar.records import JsonlAppender, iter_jsonl, to_dict, write_jsonl


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
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
) -> Path:
    """Run `process(chunk_items, chunk_index) -> records` over fixed chunks into `out`, resumably.

    After a chunk's records are flushed, its index goes to `<out>.chunks`;
    on restart, records of chunks not listed there are dropped and those
    chunks run again. `key(item)` / `record_key(record)` tie records to inputs.
    """
    if out.exists():
        return out
    partial = out.with_name(out.name + ".partial")
    ledger = out.with_name(out.name + ".chunks")
    chunks = [list(items[i : i + chunk]) for i in range(0, len(items), chunk)]
    complete: set[int] = set()
    if partial.exists() and ledger.exists():
        complete = {int(x) for x in ledger.read_text().split()}
        members = {key(x): c for c, ch in enumerate(chunks) for x in ch}
        kept = [r for r in iter_jsonl(partial) if members.get(record_key(r)) in complete]
        write_jsonl(partial, kept)  # records of a chunk cut short are dropped; it runs again
    else:
        partial.unlink(missing_ok=True)
        ledger.unlink(missing_ok=True)
    with JsonlAppender(partial) as w, open(ledger, "a") as done:
        for c, ch in enumerate(chunks):
            if c not in complete:
                for r in process(ch, c):
                    w.write(r)
                done.write(f"{c}\n")
                done.flush()
            if progress:
                progress(len(ch))
    os.replace(partial, out)
    ledger.unlink(missing_ok=True)
    return out


class Timer:
    def __enter__(self):
        self.start = time.time()
        return self

    def __exit__(self, *exc):
        self.seconds = round(time.time() - self.start, 1)


__all__ = ["RunDir", "run_chunked", "Timer", "to_dict"]
