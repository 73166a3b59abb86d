"""N-gram contamination: how much training data shares word runs with a benchmark.

    spar data contamination --in instructions.jsonl --against ifeval.jsonl [--n 8]

An instruction is contaminated when it contains any run of `n` words that
also occurs in a benchmark prompt (words lowercased, punctuation stripped,
apostrophes dropped so "don't" and "dont" match). Eight words is the usual
threshold in contamination studies: short enough to catch a copied
constraint sentence, long enough that everyday phrases ("at the end of the
day") rarely reach it. The report gives the share and the worst examples,
each with the longest run it shares, so a reader sees *what* was copied.

`refuse_contamination` is the gate `spar data synth --check-leaks` and
`spar run` use: above `max_share` it raises a UserError naming the share,
the threshold, an example and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from spar.errors import UserError
from spar.records import RecordError, iter_jsonl

_WORD = re.compile(r"\w+")
_APOSTROPHES = str.maketrans("", "", "'\u2019\u2018`")


def words(text: str) -> list[str]:
    """Lowercased words with punctuation stripped: the units n-grams are made of."""
    return _WORD.findall(text.lower().translate(_APOSTROPHES))


@dataclass
class Hit:
    id: str
    prompt: str
    run: str  # the longest word run shared with a benchmark prompt
    length: int  # its length in words
    benchmark_id: str


@dataclass
class ContaminationReport:
    n: int
    total: int
    hits: list[Hit] = field(default_factory=list)  # longest shared run first

    @property
    def share(self) -> float:
        return len(self.hits) / self.total if self.total else 0.0

    def summary(self, examples: int = 5) -> str:
        lines = [f"{len(self.hits)} of {self.total} instructions ({self.share:.2%}) share a run of {self.n} words "
                 f"with a benchmark prompt"]
        for h in self.hits[:examples]:
            lines.append(f"  {h.id}: {h.length} words shared with {h.benchmark_id}: \"{h.run}\"")
        return "\n".join(lines)


class NgramIndex:
    """Every `n`-word run of the benchmark prompts, with where it occurs (to recover the longest shared run)."""

    def __init__(self, prompts: list[tuple[str, str]], n: int = 8):
        if n < 1:
            raise UserError(f"n={n}: an n-gram needs n >= 1 words (8 is the usual contamination threshold)")
        self.n = n
        self.ids = [pid for pid, _ in prompts]
        self.texts = [words(p) for _, p in prompts]
        self.index: dict[tuple[str, ...], list[tuple[int, int]]] = {}
        for j, ws in enumerate(self.texts):
            for i in range(len(ws) - n + 1):
                self.index.setdefault(tuple(ws[i : i + n]), []).append((j, i))

    def longest_run(self, text: str) -> tuple[int, str, str] | None:
        """(length, run, benchmark id) of the longest word run `text` shares with a prompt; None below n words."""
        ws, n, best = words(text), self.n, None
        i = 0
        while i <= len(ws) - n:
            places = self.index.get(tuple(ws[i : i + n]))
            if not places:
                i += 1
                continue
            for j, start in places:
                other = self.texts[j]
                k = n
                while i + k < len(ws) and start + k < len(other) and ws[i + k] == other[start + k]:
                    k += 1
                if best is None or k > best[0]:
                    best = (k, " ".join(ws[i : i + k]), self.ids[j])
            i += 1
        return best


def load_prompts(path: str | Path, role: str) -> list[tuple[str, str]]:
    """(id, prompt) of each line of a JSONL file: IFEval rows (`key`, `prompt`) or Instruction records (`id`, `prompt`).

    `role` names the option the file came from, for the error message.
    """
    if str(path).startswith("hf:"):
        from spar.data.ifeval_rows import load_ifeval

        return [(str(r.key), r.prompt) for r in load_ifeval(str(path))]
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{role} {path}: file not found; give a JSONL file with a `prompt` field per line "
                        f"(IFEval rows or Instruction records)")
    out = []
    lineno = 0
    try:
        for lineno, obj in enumerate(iter_jsonl(path), start=1):
            if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
                raise UserError(f"{path}:{_line(path, lineno)}: expected a JSON object with a string `prompt` "
                                f"field (IFEval rows or Instruction records), got {str(obj)[:80]!r}")
            pid = obj.get("id", obj.get("key", f"line {_line(path, lineno)}"))
            out.append((str(pid), obj["prompt"]))
    except RecordError as e:
        raise UserError(str(e)) from None
    if not out:
        raise UserError(f"{role} {path}: no prompts in the file; give a JSONL file with a `prompt` field per line")
    return out


def _line(path: Path, index: int) -> int:
    """The file line of the `index`-th non-blank record (iter_jsonl skips blank lines)."""
    seen = 0
    for lineno, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if raw.strip():
            seen += 1
            if seen == index:
                return lineno
    return index


def contamination(instructions: list[tuple[str, str]], benchmark: list[tuple[str, str]] | NgramIndex,
                  n: int = 8) -> ContaminationReport:
    """Which of `instructions` ((id, prompt) pairs) share an `n`-word run with a `benchmark` prompt."""
    index = benchmark if isinstance(benchmark, NgramIndex) else NgramIndex(benchmark, n)
    report = ContaminationReport(n=index.n, total=len(instructions))
    for iid, prompt in instructions:
        found = index.longest_run(prompt)
        if found:
            report.hits.append(Hit(iid, prompt, found[1], found[0], found[2]))
    report.hits.sort(key=lambda h: (-h.length, h.id))
    return report


def refuse_contamination(instructions: list[tuple[str, str]], against: str | Path, n: int, max_share: float,
                         what: str, fix: str) -> ContaminationReport:
    """The report, or a UserError when more than `max_share` of `instructions` share an n-word run with `against`.

    `what` names the instructions (e.g. "the synthesized instructions"), `fix` says what to do about it.
    """
    report = contamination(instructions, load_prompts(against, "benchmark file"), n)
    if report.share > max_share:
        h = report.hits[0]
        raise UserError(f"{report.share:.2%} of {what} ({len(report.hits)} of {report.total}) share a run of {n} "
                        f"words with a prompt of {against}, above the limit of {max_share:.2%}; e.g. {h.id} shares "
                        f"{h.length} words with {h.benchmark_id}: \"{h.run}\"; {fix}")
    return report


def guard_training_data(instructions: list, benchmarks: dict[str, str | None], n: int = 8,
                        max_share: float = 0.02) -> None:
    """Refuse training instructions that copy evaluation prompts: a UserError when, for any benchmark file,
    more than `max_share` of them share an `n`-word run with its prompts, or one nearly duplicates a prompt.

    `benchmarks` maps the setting each file came from (e.g. "eval.ifeval_data") to its path; unset ones are
    skipped. This is what `spar run` checks before it writes instructions.jsonl.
    """
    from spar.data.synth import leak_check

    pairs = [(i.id, i.prompt) for i in instructions]
    for setting, path in benchmarks.items():
        if not path:
            continue
        refuse_contamination(pairs, path, n, max_share, f"the training instructions (checked against {setting})",
                             "reword or drop those instructions (`spar data contamination --in FILE --against "
                             f"{path}` lists them), or raise data.max_contamination if that overlap is intended")
        hits = leak_check(instructions, path)
        if hits:
            iid, key, jaccard = hits[0]
            raise UserError(f"{len(hits)} training instructions nearly duplicate prompts of {path} ({setting}), "
                            f"e.g. {iid} and {key} (word Jaccard {jaccard:.2f}); remove them from the training data")
