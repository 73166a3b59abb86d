"""FollowBench: multi-level constraint following, scored as FollowBench scores it (HSR, SSR, CSL by level).

    spar eval followbench --data FollowBench/data --model smollm2-135m-instruct \\
        --judge-backend openai --judge-model gpt-4o-mini --base-url https://api.openai.com/v1
    spar eval followbench --data FollowBench/data --backend auto --limit 3 --max-new-tokens 128 \
        --judge-max-new-tokens 160 --out runs/eval/followbench-cpu     # CPU-sized, the model judging itself

Data: FollowBench's own files in --data (a directory, or one such file):
content_, situation_, style_, format_, example_ and mixed_constraints.json,
each a JSON array of rows {example_id, category, source, level,
instruction, target}. Rows sharing an example_id form one instruction
group: level 0 is the initial instruction, and level k adds one constraint
to level k-1 (the example file has levels 1-5 only). Levels 1-5 are
answered (one user turn, greedy, as FollowBench's inference script does)
and scored; level 0 is never answered: it is where the judge's evolution
path starts.

Scoring, as FollowBench's code does (our own implementation):
* by code, all-or-nothing per row (so its SSR equals its HSR):
  - the example category: the answer must match the row's target template
    (the part after "{instruction}\\n", with {answer} standing for any text
    on one line);
  - rows whose source has a reference answer in `target`: E2E and
    text_editing (equal to it), WIKIEVENTS (every answer line is a target
    line), CONLL2003 (one of the listed entities), BBH_logical, BBH_time and
    gsm_8k (the last "(X)", nn/nn/nnnn date or "$N" equals it),
    self_made_space (contains it);
  - five mixed groups (sources cnn_dailymail, xsum, samsum, gigaword,
    arxiv) and two format groups (example_id 22 and 30) whose constraints
    FollowBench checks with code written for those rows (word counts, given
    words in given sentences, tenses, punctuation): level k passes if the
    checks of levels 1..k pass. FollowBench's own quirks are kept so the
    numbers compare: e.g. format 30's level 2 asks for five "**N...:"
    points, the suffix check looks for "-ly" with its hyphen, word counts
    are pieces between single spaces. Those checks apply only where the
    level-5 instruction names what they test (e.g. 'Newton Stewart' for
    xsum); other rows with those sources go to the judge.
* by the LLM judge, everything else: one judgment per row, shown the
  constraint-evolution path (level 0 up to the row's level) and the answer,
  asked which constraint each step added and whether the answer meets each,
  ending in a list of k YES/NO. Greedy, one vote, as FollowBench's GPT-4
  judge. The prompt is our own (JUDGE_TEMPLATE); any backend serves it (the
  openai backend for a strong judge). A judgment without a readable list of
  k answers counts every constraint of that row as unmet and is counted in
  the table (FollowBench scores it -1 and asks for a manual fix).

Metrics per category and level k = 1..5, over its instruction groups:
HSR, the share of rows whose k constraints are all met; SSR, the mean share
of constraints met; CSL, per group the number of consecutive levels from 1
whose row meets all its constraints, averaged over groups. The overall row
(the paper's level table) is the mean over the categories scored, each
weighing the same (FollowBench's aggregator also averages its per-category
results), and "avg" the mean over the five levels. The mixed category is
scored like the others, its judge told only that each step added "a
constraint" (its rows name the kinds, FollowBench's judge prompt does not).

Responses are written to --out/responses.jsonl as they come, judgments to
--out/judgments.jsonl; rerun the same command after an interruption and
only what is missing is generated (a torn last line is dropped). Writes
--out/followbench.json (settings, per category and overall metrics, every
row's verdict), --out/table.txt and --out/followbench.svg (HSR and SSR by
level).

Answers are stripped of surrounding whitespace before they are scored
(FollowBench's vLLM answers end at the end-of-turn token; spar's backends
may leave a newline at either end).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import string
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from spar.errors import UserError
from spar.parsing import parse_verdict, parse_yes_no_list
from spar.records import JsonlAppender, RecordError, iter_lines, refuse_overwrite

CATEGORIES = ("content", "situation", "style", "format", "example", "mixed")  # the paper's column order
LEVELS = (1, 2, 3, 4, 5)
OUTPUTS = ("responses.jsonl", "judgments.jsonl", "followbench.json", "table.txt", "followbench.svg")


def file_name(category: str) -> str:
    return f"{category}_constraints.json"


# ---- reading FollowBench's files


@dataclass
class Row:
    category: str  # the file's category
    example_id: int
    level: int
    instruction: str
    target: str
    source: str
    where: str = field(default="", compare=False)  # file:line, for messages


@dataclass
class Group:
    """One instruction at levels 0 (or 1) to 5; `method` is how its rows are scored."""

    category: str
    example_id: int
    levels: dict[int, Row]
    method: str = "judge"  # "template" | "target" | "fixed" | "judge"

    @property
    def source(self) -> str:
        return self.levels[1].source

    @property
    def name(self) -> str:
        return f"{self.category}/{self.example_id}"


def _array(path: Path) -> list[tuple[int, Any]]:
    """(line, element) for each element of the JSON array in `path`: the line its element starts on."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RecordError(f"{path}: not UTF-8 text (byte {e.start}); convert it to UTF-8") from None
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno}); FollowBench's files are "
                          "one JSON array of row objects each") from None
    if not isinstance(whole, list):
        raise RecordError(f"{path}: holds a JSON {type(whole).__name__}, not an array; FollowBench's files are one "
                          "JSON array of row objects each")
    decoder, out, i, line = json.JSONDecoder(), [], text.index("[") + 1, 1
    counted = 0  # text[:counted] has `line - 1` newlines
    for _ in whole:
        while text[i] in " \t\r\n,":
            i += 1
        line += text.count("\n", counted, i)
        counted = i
        obj, i = decoder.raw_decode(text, i)
        out.append((line, obj))
    return out


def _row(category: str, where: str, obj: Any) -> Row:
    if not isinstance(obj, dict):
        raise RecordError(f"{where}: a FollowBench row is an object with example_id, category, source, level, "
                          f"instruction and target; got {type(obj).__name__}")
    for key, kind in (("example_id", int), ("level", int), ("instruction", str), ("source", str),
                      ("category", str), ("target", str)):
        value = obj.get(key)
        if key not in obj:
            raise RecordError(f"{where}: no field {key!r}; a FollowBench row has example_id, category, source, "
                              "level, instruction and target")
        if not isinstance(value, kind) or isinstance(value, bool):
            want = "an integer" if kind is int else "a string"
            raise RecordError(f"{where}: field {key!r} must be {want}, got {json.dumps(value)[:60]}")
    level = obj["level"]
    if not 0 <= level <= 5:
        raise RecordError(f"{where}: field 'level' is {level}; FollowBench's levels are 0 (the initial instruction) "
                          "to 5")
    if level > 0 and not obj["instruction"].strip():
        raise RecordError(f"{where}: field 'instruction' is empty at level {level}; every level 1-5 row is answered")
    return Row(category, obj["example_id"], level, obj["instruction"], obj["target"], obj["source"], where)


def load_category(path: Path, category: str) -> list[Group]:
    """The instruction groups of one FollowBench file, in file order; a bad row raises naming file:line."""
    groups: dict[int, dict[int, Row]] = {}
    for line, obj in _array(path):
        row = _row(category, f"{path}:{line}", obj)
        levels = groups.setdefault(row.example_id, {})
        if row.level in levels:
            raise RecordError(f"{row.where}: example_id {row.example_id} has level {row.level} twice (first at "
                              f"{levels[row.level].where}); each instruction group has one row per level")
        levels[row.level] = row
    if not groups:
        raise RecordError(f"{path}: no rows; FollowBench's files hold levels 0-5 of each example_id")
    out = []
    for example_id, levels in groups.items():
        needed = LEVELS if category == "example" else (0, *LEVELS)
        missing = [k for k in needed if k not in levels]
        if missing:
            raise RecordError(f"{path}: example_id {example_id} has no level {missing[0]} row; a FollowBench "
                              f"{category} group has levels {needed[0]}-5 (level 0 is the initial instruction the "
                              "judge starts from)")
        group = Group(category, example_id, levels)
        group.method = scoring_method(group)
        for row in (levels[k] for k in LEVELS):
            _check_target(group, row)
        out.append(group)
    return out


def _check_target(group: Group, row: Row) -> None:
    """A target the group's check needs, in the form it needs; named by file:line."""
    if group.method == "template" and "{answer}" not in row.target:
        raise RecordError(f"{row.where}: an example row's target is its answer template, e.g. "
                          "\"{instruction}\\nAnswer: {answer}\"; this one has no {answer}")
    if group.method == "target" and row.source == "CONLL2003":
        try:
            entities = ast.literal_eval(row.target)
        except (ValueError, SyntaxError):
            entities = None
        if not (isinstance(entities, list) and all(isinstance(e, str) for e in entities)):
            raise RecordError(f"{row.where}: a CONLL2003 row's target is a Python list of the accepted entities, "
                              f"e.g. \"['Paris', 'Lyon']\"; got {row.target[:60]!r}")
    elif group.method == "target" and not row.target:
        raise RecordError(f"{row.where}: a {row.source} row is checked against its target, which is empty; give "
                          "the reference answer")


def data_files(data: str, categories: list[str] | None) -> list[tuple[Path, str]]:
    """(file, category) for --data: every FollowBench file in a directory (those of `categories` only), or the
    one file given."""
    p = Path(data)
    if not p.exists():
        raise UserError(f"--data {data}: no such file or directory; give FollowBench's data/ directory")
    if p.is_file():
        category = next((c for c in CATEGORIES if p.name == file_name(c)), None)
        if category is None:
            raise UserError(f"--data {data}: not a FollowBench file name; give the data/ directory or one of "
                            f"{', '.join(file_name(c) for c in CATEGORIES)}")
        if categories and category not in categories:
            raise UserError(f"--categories {','.join(categories)}: --data {data} holds only {category}")
        return [(p, category)]
    found = [(p / file_name(c), c) for c in CATEGORIES if (p / file_name(c)).is_file()]
    if not found:
        raise UserError(f"--data {data}: a directory without any FollowBench file; it needs one or more of "
                        f"{', '.join(file_name(c) for c in CATEGORIES)}")
    if categories:
        missing = [c for c in categories if c not in {c for _, c in found}]
        if missing:
            raise UserError(f"--categories: {data} has no {file_name(missing[0])}; drop {missing[0]} or add its "
                            "file")
        found = [(f, c) for f, c in found if c in categories]
    return found


def load_followbench(data: str, categories: list[str] | None = None, limit: int | None = None) -> list[Group]:
    """The groups of every FollowBench file in --data (the first `limit` of each category)."""
    return [g for f, c in data_files(data, categories) for g in load_category(f, c)[:limit]]


# ---- scoring by code


def _sentences(text: str) -> list[str]:
    """FollowBench's sentences: the non-empty pieces between . ! and ?"""
    return [s for s in re.split(r"[.!?]", text) if s]


def _has_word(text: str, word: str) -> bool:
    return re.search(r"\b" + re.escape(word) + r"\b", text) is not None


def _nth_has(text: str, n: int, word: str) -> bool:
    found = _sentences(text)
    return len(found) >= n and _has_word(found[n - 1], word)


def _spaced(text: str) -> int:
    """Words as FollowBench counts them in its summary checks: the pieces between single spaces."""
    return len(text.split(" "))


_PERFECT = re.compile(r"\b(?:has|have)\s+\w+")
_CONTINUOUS = re.compile(r"\b(?:am|is|are)\s+\w+ing\b")
_PUNCTUATION = set(string.punctuation)


def _one_sentence(t: str) -> bool:
    return len(_sentences(t)) == 1


def _format_30(t: str) -> list[bool]:
    """The five checks of FollowBench's format group 30 (a speech of five "**" points), in FollowBench's order."""
    sentences = re.split(r"(?<!\w\.\w.)(?<![A-Z][a-z]\.)(?<=\.|\?)\s", t)
    numbered = [s for s in sentences if any(f"{n}." in s for n in range(1, 6))]
    return ["**" in t,
            len(re.findall(r"\*\*\d.+?:", t)) == 5,
            all(len(s.split(".")) < 3 for s in numbered),
            all(10 <= len(s.split()) <= 15 for s in sentences),
            all(not w.endswith("-ly") for s in sentences for w in s.split())]


def _format_22(t: str, level: int) -> bool:
    """FollowBench's format group 22 (care advice in numbered paragraphs): at level 5 the closing sentence is
    a paragraph of its own, so four paragraphs are asked for instead of three."""
    paragraphs = t.split("\n\n")
    checks = [len(paragraphs) == (4 if level == 5 else 3),
              len(paragraphs) >= 3 and all(len(_sentences(p)) < 3 for p in paragraphs[:3]),
              all(len(s.split()) > 20 for s in _sentences(t)),
              all(re.match(r"\d+\.", p.lstrip()) for p in paragraphs if p.lstrip()),
              t.endswith("Those are suggestions")]
    return all(checks[:level])


# FollowBench's code checks for five of its mixed groups, level by level: level k needs checks 1..k. Each is keyed
# by source and applies only where the level-5 instruction contains the marker (the group the checks were written
# for).
FIXED_CHECKS: dict[str, tuple[str, list[Callable[[str], bool]]]] = {
    "cnn_dailymail": ("Potter", [
        lambda t: len(_sentences(t)) == 3,
        lambda t: all(len(s.split()) < 15 for s in _sentences(t)),
        lambda t: _nth_has(t, 1, "Potter") and _nth_has(t, 2, "actor") and _nth_has(t, 3, "films"),
        lambda t: not _nth_has(t, 2, "lavish"),
        lambda t: len(_sentences(t)) >= 3 and _PERFECT.search(_sentences(t)[2]) is not None]),
    "xsum": ("Newton Stewart", [
        _one_sentence,
        lambda t: _spaced(t) < 20,
        lambda t: not _has_word(t, "Newton Stewart"),
        lambda t: _CONTINUOUS.search(t) is not None,
        lambda t: _has_word(t, "operation")]),
    "samsum": ("procrast", [
        _one_sentence,
        lambda t: _spaced(t) < 15,
        lambda t: _has_word(t, "stuff"),
        lambda t: re.search("procrast", t, re.IGNORECASE) is None,
        lambda t: sum(c in _PUNCTUATION for c in t) == 1]),
    "gigaword": ("'bus'", [
        lambda t: _spaced(t) == 8,
        lambda t: not any(c in _PUNCTUATION for c in t),
        lambda t: t.islower(),
        lambda t: not _has_word(t, "bus"),
        lambda t: _has_word(t, "in")]),
    "arxiv": ("activations", [
        _one_sentence,
        lambda t: _spaced(t) <= 20,
        lambda t: t[:2] == "We",
        lambda t: _has_word(t, "activations"),
        lambda t: not _has_word(t, "transformer")]),
}
FORMAT_GROUPS = {22: "Those are suggestions", 30: '"**"'}  # format example_id -> marker in its level-5 instruction


def _last(pattern: str, text: str) -> str | None:
    found = re.findall(pattern, text)
    return found[-1] if found else None


# sources whose rows carry a reference answer in `target`, and how an answer is held against it
TARGET_CHECKS: dict[str, Callable[[str, str], bool]] = {
    "E2E": lambda t, target: t == target,
    "text_editing": lambda t, target: t == target,
    "WIKIEVENTS": lambda t, target: all(line in target.split("\n") for line in t.split("\n")),
    "CONLL2003": lambda t, target: t in ast.literal_eval(target),
    "BBH_logical": lambda t, target: _last(r"\([A-Z]\)", t) == target,
    "BBH_time": lambda t, target: _last(r"\d{2}/\d{2}/\d{4}", t) == target,
    "gsm_8k": lambda t, target: _last(r"\$\d+", t) == target,
    "self_made_space": lambda t, target: target in t,
}


def template_match(target: str, answer: str) -> bool:
    """Does `answer` have the form of an example row's target, e.g. "{instruction}\\nBOT: {answer}"? {answer} is
    any text on one line; doubled braces are literal braces."""
    template = target.replace("{instruction}\n", "").replace("{{", "{").replace("}}", "}")
    return re.fullmatch(".*".join(re.escape(part) for part in template.split("{answer}")), answer) is not None


def scoring_method(group: Group) -> str:
    if group.category == "example":
        return "template"
    if group.source in TARGET_CHECKS:
        return "target"
    top = group.levels[5].instruction
    if group.source in FIXED_CHECKS and FIXED_CHECKS[group.source][0] in top:
        return "fixed"
    marker = FORMAT_GROUPS.get(group.example_id) if group.category == "format" else None
    if marker is not None and marker in top:
        return "fixed"
    return "judge"


def code_check(group: Group, level: int, answer: str) -> bool:
    """The all-or-nothing verdict by code on `group`'s row at `level` (method template, target or fixed)."""
    t, row = answer.strip(), group.levels[level]
    if group.method == "template":
        return template_match(row.target, t)
    if group.method == "target":
        return TARGET_CHECKS[group.source](t, row.target)
    if group.category == "format" and group.example_id == 22:
        return _format_22(t, level)
    if group.category == "format" and group.example_id == 30:
        return all(_format_30(t)[:level])
    return all(check(t) for check in FIXED_CHECKS[group.source][1][:level])


# ---- the judge

KINDS = {
    "content": "content constraint (something the answer must include, exclude or cover)",
    "situation": "situation constraint (a background or circumstance the answer has to fit)",
    "style": "style constraint (the tone, voice or manner the answer is written in)",
    "format": "format constraint (the layout, structure or length of the answer)",
    "mixed": "constraint (of any kind: content, situation, style or format)",
}

JUDGE_TEMPLATE = """An instruction was rewritten {times}; every rewrite kept what was there and added exactly one \
new {kind}. Below are the starting instruction, each rewrite, and an answer to the last rewrite.

[Starting instruction]
{base}

{path}

[Answer to rewrite {count}]
{answer}

First say in a few words which constraint each rewrite added ({count} in all). Then decide, one by one, whether \
the answer meets each of them. Finish with a final line holding only a list of {count} answers in the order of the \
rewrites, each YES or NO, for example {example}."""


def judge_prompt(group: Group, level: int, answer: str) -> str:
    """The judge's request for `group`'s row at `level`: the evolution path from level 0 and the answer."""
    steps = "\n\n".join(f"[Rewrite {k}]\n{group.levels[k].instruction}" for k in range(1, level + 1))
    example = "[" + ", ".join("YES" if k % 2 == 0 else "NO" for k in range(level)) + "]"
    return JUDGE_TEMPLATE.format(times="once" if level == 1 else f"{level} times", kind=KINDS[group.category],
                                 base=group.levels[0].instruction, path=steps, count=level, answer=answer,
                                 example=example)


def read_judgment(text: str, level: int) -> list[bool] | None:
    """One verdict per constraint of a level-`level` row, or None if the judgment holds no readable list."""
    found = parse_yes_no_list(text, level)
    if found is None and level == 1:  # a single constraint: a final "YES"/"NO" or "Verdict: Yes" is an answer
        verdict = parse_verdict(text)
        return None if verdict == "invalid" else [verdict == "yes"]
    return found


# ---- metrics


@dataclass
class RowResult:
    category: str
    example_id: int
    level: int
    method: str
    met: list[bool] | None  # the judge's verdict per constraint; None: by code, or an unreadable judgment
    hard: bool
    soft: float


def row_results(groups: list[Group], answers: dict[str, str], judgments: dict[str, str]) -> list[RowResult]:
    """Every scored row: `answers` maps an instruction to its answer, `judgments` a judge prompt to its output."""
    out = []
    for g in groups:
        for k in LEVELS:
            answer = answers[g.levels[k].instruction]
            if g.method != "judge":
                ok = code_check(g, k, answer)
                out.append(RowResult(g.category, g.example_id, k, g.method, None, ok, float(ok)))
                continue
            met = read_judgment(judgments[judge_prompt(g, k, answer)], k)
            hits = sum(met) if met is not None else 0
            out.append(RowResult(g.category, g.example_id, k, g.method, met, hits == k, hits / k))
    return out


def category_scores(results: list[RowResult]) -> dict[str, Any]:
    """HSR and SSR by level, CSL, and counts, for the rows of one category."""
    groups: dict[int, dict[int, RowResult]] = {}
    for r in results:
        groups.setdefault(r.example_id, {})[r.level] = r
    n = len(groups)
    csl = 0
    for levels in groups.values():
        for k in LEVELS:
            if not levels[k].hard:
                break
            csl += 1
    return {"groups": n,
            "hsr": [sum(g[k].hard for g in groups.values()) / n for k in LEVELS],
            "ssr": [sum(g[k].soft for g in groups.values()) / n for k in LEVELS],
            "csl": csl / n,
            "by_code": sum(r.method != "judge" for r in results),
            "judged": sum(r.method == "judge" for r in results),
            "unreadable": sum(r.method == "judge" and r.met is None for r in results)}


def summarize(results: list[RowResult]) -> dict[str, Any]:
    """Per category (in the paper's order) and overall: the mean over categories, each weighing the same."""
    per = {c: category_scores([r for r in results if r.category == c])
           for c in CATEGORIES if any(r.category == c for r in results)}
    for s in per.values():
        s["hsr_avg"], s["ssr_avg"] = sum(s["hsr"]) / 5, sum(s["ssr"]) / 5
    m = len(per)
    overall = {"hsr": [sum(s["hsr"][i] for s in per.values()) / m for i in range(5)],
               "ssr": [sum(s["ssr"][i] for s in per.values()) / m for i in range(5)],
               "csl": sum(s["csl"] for s in per.values()) / m,
               "groups": sum(s["groups"] for s in per.values()),
               "unreadable": sum(s["unreadable"] for s in per.values())}
    overall["hsr_avg"], overall["ssr_avg"] = sum(overall["hsr"]) / 5, sum(overall["ssr"]) / 5
    return {"categories": per, "overall": overall}


def table(summary: dict[str, Any], title: str) -> str:
    levels = "".join(f"{'L' + str(k):>6}" for k in LEVELS)
    lines = [title, f"{'':10} {'groups':>6} | HSR{levels[3:]}{'avg':>6} | SSR{levels[3:]}{'avg':>6} | {'CSL':>4}"
             f" {'unreadable':>10}"]

    def line(name: str, s: dict) -> str:
        hsr = "".join(f"{100 * x:6.1f}" for x in s["hsr"]) + f"{100 * s['hsr_avg']:6.1f}"
        ssr = "".join(f"{100 * x:6.1f}" for x in s["ssr"]) + f"{100 * s['ssr_avg']:6.1f}"
        return f"{name:10} {s['groups']:6d} | {hsr} | {ssr} | {s['csl']:4.2f} {s['unreadable']:10d}"

    lines += [line(c, s) for c, s in summary["categories"].items()]
    lines.append(line("overall", summary["overall"]))
    lines.append("(HSR and SSR in %; CSL in levels, 0-5; overall = the mean over the categories shown; unreadable = "
                 "judgments without a readable YES/NO list, scored as all constraints unmet)")
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: Path) -> None:
    """HSR and SSR against the level: one line per category, the overall mean in bold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((axes[0], "hsr", "hard satisfaction rate (%)"),
                           (axes[1], "ssr", "soft satisfaction rate (%)")):
        for c, s in summary["categories"].items():
            ax.plot(LEVELS, [100 * x for x in s[key]], marker="o", label=c, alpha=0.7)
        ax.plot(LEVELS, [100 * x for x in summary["overall"][key]], marker="s", color="black", linewidth=2.5,
                label="overall")
        ax.set_xticks(LEVELS)
        ax.set_xlabel("level (constraints added)")
        ax.set_ylabel(label)
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle("FollowBench by level")
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


# ---- written as they come, resumed


def done_so_far(path: Path, settings: dict[str, Any], what: str, cut: set[str] | None = None) -> dict[str, str]:
    """Prompt -> response of the records already in `path` (a torn last line is dropped first); refuses records
    written with other `settings`, which a resumed run would mix into one score. Prompts whose response was cut
    at the length limit go into `cut`."""
    if not path.exists():
        return {}
    JsonlAppender(path).close()  # opening repairs a half-written last line
    done: dict[str, str] = {}
    for where, obj in iter_lines(path):
        if not (isinstance(obj, dict) and isinstance(obj.get("prompt"), str) and isinstance(obj.get("response"), str)):
            raise RecordError(f"{where}: each line needs string fields 'prompt' and 'response'; this is not the "
                              f"{what} file of `spar eval followbench`: give another --out")
        for name, want in settings.items():
            if obj.get(name, want) != want:
                raise UserError(f"{where}: written with {name}={obj[name]!r}, this run asks {name}={want!r}; resume "
                                "with the same settings or give another --out")
        done[obj["prompt"]] = obj["response"]
        if cut is not None and obj.get("finish_reason") == "length":
            cut.add(obj["prompt"])
    return done


def generate_missing(backend, todo: list[tuple[str, str]], done: dict[str, str], path: Path, max_new_tokens: int,
                     batch_size: int, extra: dict[str, Any], label: str, cut: set[str] | None = None) -> None:
    """Answer each (name, prompt) of `todo` greedily, in batches, appending {key: name, prompt, response,
    finish_reason, **extra} to `path` as each batch finishes; `done` gets prompt -> response, `cut` the prompts
    whose answer hit the length limit."""
    from spar.backends import SamplingParams

    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0, seed=0)
    todo = sorted(todo, key=lambda item: len(item[1]))  # similar lengths share a batch: hf pads to the longest
    with JsonlAppender(path) as w:
        for i in range(0, len(todo), batch_size):
            batch = todo[i:i + batch_size]
            outs = backend.generate([[{"role": "user", "content": p}] for _, p in batch], params)
            for (name, prompt), completions in zip(batch, outs):
                done[prompt] = completions[0].text
                if cut is not None and completions[0].finish_reason == "length":
                    cut.add(prompt)
                w.write({"key": name, "prompt": prompt, "response": completions[0].text,
                         "finish_reason": completions[0].finish_reason, **extra})
            print(f"{label}: {min(i + batch_size, len(todo))} of {len(todo)}", file=sys.stderr)


# ---- the command


def add_arguments(p: argparse.ArgumentParser) -> None:
    from spar.commands.generate import add_backend_flags

    p.add_argument("--data", required=True,
                   help="FollowBench's data/ directory (content_, situation_, style_, format_, example_, "
                        "mixed_constraints.json) or one of those files")
    p.add_argument("--categories", default=None,
                   help=f"comma-separated, of {', '.join(CATEGORIES)} (default: every file in --data)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N instruction groups per category")
    p.add_argument("--model", default="smollm2-135m-instruct", help="the model answering the instructions")
    p.add_argument("--backend", default="hf", choices=["auto", "hf", "vllm", "openai"])
    p.add_argument("--max-new-tokens", type=int, default=2048, help="answer length limit (2048 as FollowBench's)")
    p.add_argument("--judge-model", default=None, help="the judge of the rows code cannot check (default: --model)")
    p.add_argument("--judge-backend", default=None, choices=["auto", "hf", "vllm", "openai"],
                   help="the judge's backend (default: --backend); openai for a strong judge behind an API")
    p.add_argument("--judge-max-new-tokens", type=int, default=1024, help="judgment length limit (1024 as "
                                                                           "FollowBench's)")
    p.add_argument("--batch-size", type=int, default=16, help="chats per backend call (and hf batch size)")
    p.add_argument("--out", default="runs/eval/followbench",
                   help="folder for responses.jsonl, judgments.jsonl, followbench.json, table.txt, followbench.svg")
    add_backend_flags(p)


def _backends(args: argparse.Namespace):
    """(actor, judge) model settings and constructor options; the openai flags go to whichever uses openai."""
    from spar.commands.generate import backend_options
    from spar.config import ModelConfig

    actor = ModelConfig(name=args.model, backend=args.backend, batch_size=args.batch_size)
    judge = ModelConfig(name=args.judge_model or args.model, backend=args.judge_backend or args.backend,
                        batch_size=args.batch_size)
    openai = [m for m in (actor, judge) if m.backend == "openai"]
    actor_options = backend_options(args, actor) if actor.backend == "openai" or not openai else \
        actor.engine_options()
    judge_options = backend_options(args, judge) if judge.backend == "openai" else judge.engine_options()
    return actor, actor_options, judge, judge_options


def run(args: argparse.Namespace) -> int:
    # every flag and input is checked before a model loads or a file is written
    for flag, value in (("--limit", args.limit), ("--max-new-tokens", args.max_new_tokens),
                        ("--judge-max-new-tokens", args.judge_max_new_tokens), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise UserError(f"command line '{flag} {value}': must be >= 1")
    categories = None
    if args.categories is not None:
        categories = [c.strip() for c in args.categories.split(",") if c.strip()]
        bad = [c for c in categories if c not in CATEGORIES]
        if bad or not categories:
            raise UserError(f"command line '--categories {args.categories}': choose from {', '.join(CATEGORIES)}")
    actor_cfg, actor_options, judge_cfg, judge_options = _backends(args)
    files = data_files(args.data, categories)
    inputs = {f"--data ({f.name})": str(f) for f, _ in files}
    refuse_overwrite(args.out, "--out", inputs, directory=True, writes=OUTPUTS)
    groups = load_followbench(args.data, categories, args.limit)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t = time.time()
    from spar.backends import make_backend
    from spar.commands.generate import check_context

    # 1. answers, level 1-5 of every group (an instruction met twice is answered once)
    rows = {g.levels[k].instruction: g.levels[k] for g in groups for k in LEVELS}
    answer_settings = {"model": actor_cfg.name, "max_new_tokens": args.max_new_tokens}
    answers = done_so_far(out / "responses.jsonl", answer_settings, "responses")
    todo = [(f"{r.category}/{r.example_id}/{r.level}", p) for p, r in rows.items() if p not in answers]
    if answers and todo:
        print(f"resuming: {len(rows) - len(todo)} of {len(rows)} instructions already answered", file=sys.stderr)
    actor = None
    if todo:
        actor = make_backend(actor_cfg.backend, actor_cfg.name, **actor_options)
        check_context(actor, [[{"role": "user", "content": p}] for _, p in todo], args.max_new_tokens,
                      [rows[p].where for _, p in todo])
        generate_missing(actor, todo, answers, out / "responses.jsonl", args.max_new_tokens, args.batch_size,
                         answer_settings, "answered")

    # 2. judgments of the rows code cannot check
    asks = {judge_prompt(g, k, answers[g.levels[k].instruction]): g.levels[k]
            for g in groups if g.method == "judge" for k in LEVELS}
    cut: set[str] = set()  # judgments that hit --judge-max-new-tokens
    judge_settings = {"judge_model": judge_cfg.name, "max_new_tokens": args.judge_max_new_tokens}
    judgments = done_so_far(out / "judgments.jsonl", judge_settings, "judgments", cut)
    todo = [(f"{r.category}/{r.example_id}/{r.level}", p) for p, r in asks.items() if p not in judgments]
    if todo:
        same = actor is not None and (judge_cfg.name, judge_cfg.backend) == (actor_cfg.name, actor_cfg.backend)
        if actor is not None and not same:
            actor.close()  # one model in memory at a time
        judge = actor if same else make_backend(judge_cfg.backend, judge_cfg.name, **judge_options)
        check_context(judge, [[{"role": "user", "content": p}] for _, p in todo], args.judge_max_new_tokens,
                      [f"judging {asks[p].where}" for _, p in todo])
        generate_missing(judge, todo, judgments, out / "judgments.jsonl", args.judge_max_new_tokens,
                         args.batch_size, judge_settings, "judged", cut)
        judge.close()
    elif actor is not None:
        actor.close()

    # 3. scores
    results = row_results(groups, answers, judgments)
    summary = summarize(results)
    judged = any(g.method == "judge" for g in groups)
    title = (f"FollowBench: {actor_cfg.name}" + (f", judged by {judge_cfg.name}" if judged else "")
             + f", {len(groups)} instruction groups")
    text = table(summary, title)
    unreadable = [p for p, r in asks.items() if read_judgment(judgments[p], r.level) is None]
    if unreadable:
        cut_short = sum(p in cut for p in unreadable)
        why = f", {cut_short} of them cut at --judge-max-new-tokens {args.judge_max_new_tokens}" if cut_short else ""
        print(f"note: {len(unreadable)} judgment(s) held no readable YES/NO list{why}; they count as all constraints "
              f"unmet (see {out / 'judgments.jsonl'})", file=sys.stderr)
    result = {"benchmark": "followbench", "model": actor_cfg.name, "judge_model": judge_cfg.name if judged else None,
              "data": args.data, "max_new_tokens": args.max_new_tokens,
              "judge_max_new_tokens": args.judge_max_new_tokens, "limit": args.limit, **summary,
              "seconds": round(time.time() - t, 1), "rows": [asdict(r) for r in results]}
    from spar.experiments import save_result

    save_result(out, "followbench", result, text, lambda path: plot(summary, path))
    return 0
