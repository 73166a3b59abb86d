"""How well the refiner judges: LLMBar as the SPaR paper scores it (Tables 2, 5, 8, 9), and agreement with code.

    spar eval judgment --data LLMBar/Dataset/LLMBar --model smollm2-135m-instruct            # paper protocol
    spar eval judgment --data LLMBar/Dataset/LLMBar --n 1 3 5 --out judgment.json          # Table 9 rows
    spar eval judgment --protocol pairwise --data LLMBar/Dataset/LLMBar/Natural/dataset.json
    spar eval judgment --protocol verifier --data judged.jsonl                              # agreement with code

Data: LLMBar rows (`input`, `output_1`, `output_2`, `label` 1 or 2), from
LLMBar's own `dataset.json` files (a JSON array) or JSONL. `--data` may be
given several times, and may be a directory: every `dataset.json` under it
is read, so LLMBar's layout (Natural/, Adversarial/{GPTInst,GPTOut,Manual,
Neighbor}/) yields the paper's five subsets. A row's subset is its `subset`
field if it has one, else its file's directory (its file name for a file
not named dataset.json); a name containing natural, gptinst, gptout, manual
or neighbor (any case) is that LLMBar subset.

Protocol pointwise (default): the paper's. The judge is SPaR's pointwise
judge, so every pair becomes two judgments: "does this output follow the
instruction?", gold Yes for the output LLMBar labels better and No for the
other. Each output gets n sampled votes (temperature 0.7, top_p 1); the
majority of the readable votes is the verdict; a tie, or no readable vote,
is no verdict (an abstention, counted wrong). Acc. is the share of outputs
judged right; F1 is that of the Yes class (the output follows); the JSON
also has the F1 of No. With `--n 1 3 5` the outputs are judged once with 5
votes and the first 1, 3 and 5 votes are tallied: the votes are independent
samples, so each prefix is an n-vote judge, at the cost of one.

Where this comes from. thu-coai/SPaR holds no LLMBar script; the facts used
are its judge (src/judge.py: one user turn asking whether the Output follows
the Prompt, listing unmet constraints, then "Final Judgement ...: (Yes or
No)"; 5 samples at temperature 0.7, top_p 1.0) and its vote tally
(src/process_data.py get_acc and process_score_res_voting: each sample's
Yes/No read after "Final Judgement", unreadable ones left out, the majority
wins, an equal count gives no verdict). The scoring is fixed by the paper's
own numbers (Tables 2 and 8; tests/test_eval_judgment.py reproduces two rows
of Table 2 to the last digit):
- Every output of every pair is scored: each Acc. is a count over 2 x pairs
  outputs (Natural 74.5 = 149/200, GPTOut 47.9 = 45/94).
- F1 is a binary F1 over those outputs, not a macro one: binary fits 97 of
  the 110 printed cells with every output decided, macro 6. The numbers
  are symmetric in Yes and No; the positive class is Yes because the
  reference codes Yes as 1 (sklearn's default positive label) and because
  judges without SPaR training print F1 above Acc. (Mistral-7B-Instruct on
  Natural 58.0 / 69.1 answers the positive class 172 times in 200): an
  untrained judge is lenient, and trained ones (F1 below Acc.) stricter.
- An undecided output stays in the count, wrong and not a Yes: SPaR-7B-SFT
  on Neighbor (69.4 / 62.3) is one such output; read as a No it would be
  69.8, dropped 69.7.
- Adversarial is the plain mean of its four subsets and Average that of all
  five, over the unrounded subset scores (SPaR-8B-RFT-iter3: 67.8 / 62.4
  and 68.3 / 63.1; weighting subsets by pairs gives Acc. 68.9, halving
  Natural and Adversarial 69.2).
The JSON also gives the F1 of No and metrics pooled over all outputs.

Differences from the reference, on purpose: the prompt is spar's judge
prompt (spar.prompts.JUDGE_TEMPLATE, "Verdict: Yes/No" as the last line):
the refiner being evaluated is the one spar trains on that prompt, and it
is shorter, which matters for a 135M model on a CPU; the reference allows
2048 judgment tokens, spar 256 by default (`--max-new-tokens`).

Protocol pairwise (spar's own, not the paper's): both outputs are judged
pointwise and the higher value is preferred; a tie or a missing value is
settled by a pairwise prompt; each pair is judged in both orders. An
unreadable pairwise answer is an abstention, counted wrong. Acc. over the 2
x pairs judgments, F1 macro over labels 1 and 2, plus accuracy over answered
judgments and positional agreement.

Protocol verifier (`--pointwise` in older commands): rows of `prompt`,
`constraints`, `response`; the LLM judge's label against the verifier's on
verifiable constraints: accuracy, and precision and recall of "No".
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from spar.backends.base import Backend, SamplingParams
from spar.config import JudgeConfig
from spar.errors import UserError
from spar.judge import LLMJudge, judge_from_config, tally, verifier_verdict
from spar.parsing import parse_preference
from spar.records import Instruction, RecordError, check_constraints, refuse_overwrite

SUBSETS = ("Natural", "GPTInst", "GPTOut", "Manual", "Neighbor")  # the paper's column order
ADVERSARIAL = SUBSETS[1:]

PAIRWISE = """Which response follows the instruction better?

[Instruction]
{prompt}

[Response A]
{a}

[Response B]
{b}

Answer with one line: "Better: A" or "Better: B"."""


@dataclass
class PairRow:
    input: str
    output_1: str
    output_2: str
    label: int
    subset: str = ""
    where: str = field(default="", compare=False)  # file[index] or file:line, for messages


def subset_name(text: str) -> str:
    """LLMBar's name for a subset if `text` names one (any case, e.g. "Adversarial/GPTInst"), else `text`."""
    low = text.lower()
    return next((s for s in SUBSETS if s.lower() in low), text)


def _rows(path: str | Path) -> Iterator[tuple[str, Any]]:
    """(where, object) for each row of a JSON array file (where = file[index]) or a JSONL file (file:line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecordError(f"{path}: no such file; give an LLMBar dataset.json or a JSONL file") from None
    except IsADirectoryError:
        raise RecordError(f"{path}: is a directory; give the dataset file inside it (LLMBar: dataset.json)") from None
    except UnicodeDecodeError as e:
        raise RecordError(f"{path}: not UTF-8 text (byte {e.start}); convert it to UTF-8") from None
    if text.lstrip().startswith("["):
        try:
            array = json.loads(text)
        except json.JSONDecodeError as e:
            raise RecordError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno}); "
                              "a .json file must hold one JSON array of objects") from None
        for index, obj in enumerate(array):
            yield f"{path}[{index}]", obj
        return
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise RecordError(f"{path}:{lineno}: not valid JSON ({e.msg}); fix or delete this line") from None
        yield f"{path}:{lineno}", obj


def load_pairs(path: str | Path, subset: str = "") -> list[PairRow]:
    """LLMBar rows from a dataset.json (JSON array) or JSONL file; a row's `subset` field overrides `subset`.
    A bad row raises RecordError naming it."""
    rows = []
    for where, obj in _rows(path):
        if not isinstance(obj, dict) or any(not isinstance(obj.get(k), str) for k in ("input", "output_1", "output_2")):
            raise RecordError(f"{where}: an LLMBar row needs string fields input, output_1, output_2")
        label = obj.get("label")
        if isinstance(label, bool) or label not in (1, 2):
            raise RecordError(f"{where}: label must be 1 or 2 (the better output), got {label!r}")
        own = obj.get("subset")
        if own is not None and not isinstance(own, str):
            raise RecordError(f"{where}: subset must be a string (e.g. \"Natural\"), got {own!r}")
        rows.append(PairRow(obj["input"], obj["output_1"], obj["output_2"], label,
                            subset_name(own) if own else subset, where))
    if not rows:
        raise RecordError(f"{path}: no LLMBar rows; each needs input, output_1, output_2 and label")
    return rows


def data_files(data: list[str]) -> list[tuple[Path, str]]:
    """(file, subset) for each --data: a file as given, a directory as every dataset.json under it."""
    found: list[tuple[Path, str]] = []
    for d in data:
        p = Path(d)
        if p.is_dir():
            inside = sorted(p.rglob("dataset.json"))
            if not inside:
                raise UserError(f"--data {d}: a directory without any dataset.json under it; give LLMBar's "
                                "Dataset/LLMBar directory (Natural/, Adversarial/...) or the data files")
            for f in inside:
                rel = f.parent.relative_to(p).as_posix()
                found.append((f, subset_name(p.name if rel == "." else rel)))
        else:
            found.append((p, subset_name(p.parent.name if p.stem == "dataset" else p.stem)))
    seen: dict[Path, Path] = {}
    for f, _ in found:
        key = f.resolve()
        if key in seen:
            raise UserError(f"--data: {f} is read twice (also as {seen[key]}); its rows would count twice. "
                            "Give each file or directory once")
        seen[key] = f
    return found


def load_llmbar(data: list[str], limit: int | None = None) -> list[PairRow]:
    """Every pair of --data in order, or the first `limit` pairs of each subset."""
    rows = [row for f, subset in data_files(data) for row in load_pairs(f, subset)]
    if limit is None:
        return rows
    taken: dict[str, int] = {}
    kept = []
    for row in rows:
        if taken.get(row.subset, 0) < limit:
            taken[row.subset] = taken.get(row.subset, 0) + 1
            kept.append(row)
    return kept


def load_pointwise(path: str | Path) -> list[tuple[Instruction, str]]:
    """(instruction, response) items from rows with prompt, constraints and response; bad rows name file:line."""
    items = []
    for where, obj in _rows(path):
        if not isinstance(obj, dict) or any(not isinstance(obj.get(k), str) for k in ("prompt", "response")):
            raise RecordError(f"{where}: a pointwise row needs string fields prompt and response, and constraints")
        constraints = check_constraints(obj.get("constraints") or [], where)
        items.append((Instruction(id=where, prompt=obj["prompt"], constraints=constraints), obj["response"]))
    if not items:
        raise RecordError(f"{path}: no rows; each needs prompt, constraints and response")
    return items


# ---- the paper's protocol: a yes/no verdict per output


def pointwise_items(rows: list[PairRow]) -> list[tuple[Instruction, str, bool]]:
    """(instruction, output, gold) for both outputs of every pair: gold True (follows) for the labelled one."""
    items = []
    for r in rows:
        inst = Instruction(id=r.where, prompt=r.input)
        items += [(inst, r.output_1, r.label == 1), (inst, r.output_2, r.label == 2)]
    return items


def yes_no_scores(golds: list[bool], labels: list[str]) -> dict:
    """Acc. and F1 of predicted labels ("yes" / "no" / "abstain") against gold follows/does not follow.
    An abstention is wrong: it is neither a correct Yes nor a correct No."""
    def f1(positive: str, gold_positive: bool) -> float:
        tp = sum(p == positive and g == gold_positive for g, p in zip(golds, labels))
        fp = sum(p == positive and g != gold_positive for g, p in zip(golds, labels))
        fn = sum(p != positive and g == gold_positive for g, p in zip(golds, labels))
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0

    right = sum(p == ("yes" if g else "no") for g, p in zip(golds, labels))
    return {"accuracy": right / len(golds) if golds else 0.0, "f1": f1("yes", True), "f1_no": f1("no", False),
            "outputs": len(golds), "abstained": sum(p == "abstain" for p in labels)}


def evaluate_pointwise(rows: list[PairRow], judge: LLMJudge, ns: list[int]) -> dict[int, dict[str, dict]]:
    """{n: {subset: scores}} with an n-vote verdict for every output: the first n of the judge's votes."""
    items = pointwise_items(rows)
    verdicts = judge.judge([(inst, out) for inst, out, _ in items])  # one batched call for every output
    subsets = [r.subset for r in rows for _ in (1, 2)]
    results = {}
    for n in ns:
        labels = [tally(v.votes[:n], min_valid=1)[1] for v in verdicts]
        results[n] = {s: yes_no_scores([g for (_, _, g), t in zip(items, subsets) if t == s],
                                       [p for p, t in zip(labels, subsets) if t == s])
                      for s in dict.fromkeys(subsets)}
        results[n]["*"] = yes_no_scores([g for _, _, g in items], labels)
    return results


# ---- spar's pairwise protocol


def _pairwise_choices(backend: Backend, asks: list[tuple[str, str, str]], seed: int) -> list[int | None]:
    """1 (A), 2 (B) or None (unreadable) for each (prompt, a, b), in one batched call."""
    if not asks:
        return []
    chats = [[{"role": "user", "content": PAIRWISE.format(prompt=p, a=a, b=b)}] for p, a, b in asks]
    outs = backend.generate(chats, SamplingParams(max_new_tokens=64, seed=seed))
    return [parse_preference(completions[0].text) for completions in outs]


def pair_picks(rows: list[PairRow], judge: LLMJudge, backend: Backend, seed: int = 0) -> dict[tuple[int, int], Any]:
    """(row, order) -> the output preferred (1 or 2) or None (abstained); order 0 shows output_1 first."""
    items = []
    for r in rows:
        inst = Instruction(id="", prompt=r.input)
        items += [(inst, r.output_1), (inst, r.output_2)]
    verdicts = judge.judge(items)  # one batched call for every output
    picks: dict[tuple[int, int], int | None] = {}
    asks: list[tuple[int, int]] = []
    orders = ((1, 2), (2, 1))
    for k in range(len(rows)):
        values = {1: verdicts[2 * k].value, 2: verdicts[2 * k + 1].value}
        for o, (first, second) in enumerate(orders):
            if values[first] is not None and values[second] is not None and values[first] != values[second]:
                picks[k, o] = first if values[first] > values[second] else second
            else:  # tied, or the judge abstained on one: no evidence either way, ask for a preference
                asks.append((k, o))
    outs = {1: lambda r: r.output_1, 2: lambda r: r.output_2}
    choices = _pairwise_choices(
        backend, [(rows[k].input, outs[orders[o][0]](rows[k]), outs[orders[o][1]](rows[k])) for k, o in asks], seed)
    for (k, o), choice in zip(asks, choices):
        picks[k, o] = orders[o][choice - 1] if choice else None
    return picks


def pair_metrics(rows: list[PairRow], picks: dict[tuple[int, int], Any], keep: list[int] | None = None) -> dict:
    """Pairwise metrics over the rows numbered in `keep` (default all)."""
    keep = list(range(len(rows))) if keep is None else keep
    correct = sum(picks[k, o] == rows[k].label for k in keep for o in (0, 1))
    abstained = sum(picks[k, o] is None for k in keep for o in (0, 1))
    both = [k for k in keep if picks[k, 0] is not None and picks[k, 1] is not None]
    golds = [rows[k].label for k in keep for _ in (0, 1)]
    preds = [picks[k, o] for k in keep for o in (0, 1)]
    total = 2 * len(keep)
    return {"accuracy": correct / total if total else 0.0,
            "accuracy_answered": correct / (total - abstained) if total > abstained else None,
            "positional_agreement": sum(picks[k, 0] == picks[k, 1] for k in both) / len(both) if both else None,
            "f1": _macro_f1(golds, preds), "n_pairs": len(keep), "judgments": total, "abstained": abstained,
            "pairs_answered_both_orders": len(both)}


def evaluate_pairs(rows: list[PairRow], judge: LLMJudge, backend: Backend, seed: int = 0) -> dict:
    return pair_metrics(rows, pair_picks(rows, judge, backend, seed))


def _macro_f1(gold: list[int], pred: list[int | None]) -> float:
    """Macro F1 over labels 1 and 2; an abstention (None) is a miss of the gold label."""
    scores = []
    for c in (1, 2):
        tp = sum(g == c and p == c for g, p in zip(gold, pred))
        fp = sum(g != c and p == c for g, p in zip(gold, pred))
        fn = sum(g == c and p != c for g, p in zip(gold, pred))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / 2


def evaluate_pairwise(rows: list[PairRow], judge: LLMJudge, backend: Backend, seed: int = 0) -> dict[str, dict]:
    """{subset: pairwise metrics}, "*" for all rows."""
    picks = pair_picks(rows, judge, backend, seed)
    out = {s: pair_metrics(rows, picks, [k for k, r in enumerate(rows) if r.subset == s])
           for s in dict.fromkeys(r.subset for r in rows)}
    out["*"] = pair_metrics(rows, picks)
    return out


# ---- the paper's layout


def summarize(per_subset: dict[str, dict]) -> dict:
    """Subsets in the paper's order (others after), the Adversarial mean and the overall mean (unweighted over
    subsets; when LLMBar's subsets are present, other subsets are left out of the means), and pooled metrics."""
    names = [s for s in per_subset if s != "*"]
    ordered = [s for s in SUBSETS if s in names] + [s for s in names if s not in SUBSETS]

    def mean(group: list[str]) -> dict | None:
        if not group:
            return None
        return {k: sum(per_subset[s][k] for s in group) / len(group) for k in ("accuracy", "f1")}

    known = [s for s in ordered if s in SUBSETS]
    return {"subsets": {s: per_subset[s] for s in ordered},
            "adversarial": mean([s for s in ordered if s in ADVERSARIAL]),
            "average": mean(known or ordered), "pooled": per_subset["*"]}


def table(results: dict[int, dict]) -> str:
    """One row per vote count: Acc. and F1 (percent) per subset, Adversarial average, average."""
    first = next(iter(results.values()))
    cols = list(first["subsets"]) + (["Adv. avg"] if first["adversarial"] else []) + ["Average"]
    head1 = "votes " + "".join(f"{(('Adv. ' + c) if c in ADVERSARIAL else c)[:14]:>15}" for c in cols)
    head2 = "      " + "".join(f"{'Acc.':>9}{'F1':>6}" for _ in cols)
    lines = [head1, head2]
    for n, r in results.items():
        cells = list(r["subsets"].values()) + ([r["adversarial"]] if r["adversarial"] else []) + [r["average"]]
        lines.append(f"{n:>5} " + "".join(f"{100 * c['accuracy']:>9.1f}{100 * c['f1']:>6.1f}" for c in cells))
    return "\n".join(lines)


def plot(results: dict[int, dict], path: Path) -> None:
    """Accuracy and F1 per subset (and the averages), one bar per vote count: the paper's Tables 2/9 drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(results.values()))
    cols = list(first["subsets"]) + (["Adv. avg"] if first["adversarial"] else []) + ["Average"]
    fig, axes = plt.subplots(1, 2, figsize=(max(7.0, 1.3 * len(cols) * 2), 3.8), sharey=True)
    width = 0.8 / len(results)
    for ax, metric, title in ((axes[0], "accuracy", "Acc."), (axes[1], "f1", "F1 of Yes")):
        for k, (n, r) in enumerate(results.items()):
            cells = list(r["subsets"].values()) + ([r["adversarial"]] if r["adversarial"] else []) + [r["average"]]
            xs = [i + (k - (len(results) - 1) / 2) * width for i in range(len(cols))]
            ax.bar(xs, [100 * c[metric] for c in cells], width, label=f"{n} vote{'s' if n > 1 else ''}")
        ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("%")
    axes[1].legend(fontsize=8)
    fig.suptitle("Judgment on LLMBar (SPaR Tables 2/9)")
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


def pointwise_agreement(items: list[tuple[Instruction, str]], judge) -> dict:
    """Agreement of `judge` with the verifier; "No" is the positive class."""
    truth = [verifier_verdict(i, r).label for i, r in items]
    keep = [k for k, t in enumerate(truth) if t in ("yes", "no")]
    got = judge.judge([items[k] for k in keep])
    tp = fp = fn = agree = abstain = 0
    for k, v in zip(keep, got):
        t, p = truth[k], v.label
        abstain += p == "abstain"
        agree += p == t
        tp += p == "no" and t == "no"
        fp += p == "no" and t == "yes"
        fn += p != "no" and t == "no"
    n = max(1, len(keep))
    return {"n": len(keep), "accuracy": agree / n, "precision_no": tp / (tp + fp) if tp + fp else 0.0,
            "recall_no": tp / (tp + fn) if tp + fn else 0.0, "abstain": abstain,
            "verifier_no_rate": sum(truth[k] == "no" for k in keep) / n}


def judgment_config(n: int, args: argparse.Namespace) -> JudgeConfig:
    """LLMBar: the reference's vote (n samples, the majority of the readable ones, no extra rounds for ties).
    Verifier agreement: the loop's judge (judge.* defaults: extra rounds, a majority of n readable)."""
    if args.protocol == "verifier":
        return JudgeConfig(kind="llm", n=n, temperature=args.temperature, max_new_tokens=args.max_new_tokens)
    return JudgeConfig(kind="llm", n=n, temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                       resample=0, min_valid=1)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, action="append",
                   help="LLMBar dataset.json (a JSON array) or JSONL, or a directory of them (LLMBar's Natural/, "
                        "Adversarial/...); repeat for several. With --protocol verifier: rows of prompt, "
                        "constraints, response")
    p.add_argument("--protocol", choices=["pointwise", "pairwise", "verifier"], default="pointwise",
                   help="pointwise: the paper's (a yes/no verdict per output); pairwise: spar's (which output is "
                        "better, both orders); verifier: agreement with code on constraint instructions")
    p.add_argument("--pointwise", action="store_const", const="verifier", dest="protocol",
                   help=argparse.SUPPRESS)  # the old name of --protocol verifier
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--backend", default="hf", choices=["auto", "hf", "vllm", "openai"])
    p.add_argument("--limit", type=int, default=None,
                   help="judge only the first N pairs of each subset (a CPU-sized run; default: every pair)")
    p.add_argument("--n", type=int, nargs="+", default=[5],
                   help="votes per output; several (--n 1 3 5, the paper's Table 9) give one row each")
    p.add_argument("--temperature", type=float, default=0.7, help="judge sampling temperature (paper: 0.7)")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the metrics JSON here (and beside it, for LLMBar, the table "
                                                "as .txt and a plot as .svg)")


def run(args: argparse.Namespace) -> int:
    from spar.backends import make_backend

    # everything that can be checked is checked before a model loads
    ns = sorted(set(args.n))
    checked = [("--n", n) for n in ns] + [("--max-new-tokens", args.max_new_tokens)]
    for flag, value in checked + ([("--limit", args.limit)] if args.limit is not None else []):
        if value < 1:
            raise UserError(f"{flag} {value}: must be at least 1")
    if args.protocol == "verifier" and args.limit is not None:
        raise UserError(f"--limit {args.limit}: applies to LLMBar's subsets, not to --protocol verifier")
    if args.protocol == "verifier" and len(ns) > 1:
        raise UserError(f"--n {' '.join(map(str, args.n))}: --protocol verifier takes one vote count")
    if args.temperature < 0:
        raise UserError(f"--temperature {args.temperature}: must be at least 0")
    files = [Path(d) for d in args.data] if args.protocol == "verifier" else [f for f, _ in data_files(args.data)]
    if args.out:
        out = Path(args.out)
        if out.is_dir():
            raise UserError(f"--out {args.out}: is a directory; give a file path for the metrics JSON")
        for f in files:
            if out.exists() and out.resolve() == f.resolve():
                raise UserError(f"--out {args.out}: is the --data file; writing the metrics there would destroy it. "
                                "Give another path")
            for path in (out, out.with_suffix(".txt"), out.with_suffix(".svg")):  # also a link or another name
                refuse_overwrite(path, "--out", {"--data": str(f)})
    if args.protocol == "verifier":
        items = [item for f in files for item in load_pointwise(f)]
        asked = [(i.prompt, r, i.id) for i, r in items]
    else:
        rows = load_llmbar(args.data, args.limit)
        asked = [(r.input, o, r.where) for r in rows for o in (r.output_1, r.output_2)]
    backend = make_backend(args.backend, args.model)
    from spar.commands.generate import check_context
    from spar.prompts import judge_chat

    check_context(backend, [judge_chat(p, r) for p, r, _ in asked], args.max_new_tokens, [w for _, _, w in asked])
    report: dict[str, Any] = {"protocol": args.protocol, "model": args.model}
    if args.protocol == "verifier":
        judge = judge_from_config(judgment_config(ns[-1], args), backend, args.seed)
        report |= pointwise_agreement(items, judge)
        text = json.dumps(report, indent=2)
    else:
        if args.protocol == "pointwise":
            judge = judge_from_config(judgment_config(ns[-1], args), backend, args.seed)
            per_n = evaluate_pointwise(rows, judge, ns)
        else:  # each vote count its own judge: a pairwise pick depends on the votes' values, not only a label
            per_n = {n: evaluate_pairwise(rows, judge_from_config(judgment_config(n, args), backend, args.seed),
                                          backend, args.seed) for n in ns}
        results = {n: summarize(r) for n, r in per_n.items()}
        f1 = "of Yes (the output follows)" if args.protocol == "pointwise" else "macro over labels 1 and 2"
        report |= {"n_pairs": len(rows), "f1": f1,
                   "results": {str(n): r for n, r in results.items()}}
        text = table(results)
        report["table"] = text
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        if args.protocol == "verifier":
            print(f"(metrics JSON in {out})")
        else:
            out.with_suffix(".txt").write_text(text + "\n")
            plot(results, out.with_suffix(".svg"))
            print(f"(metrics JSON in {out}; the table in {out.with_suffix('.txt')}, the plot in "
                  f"{out.with_suffix('.svg')})")
    elif args.protocol != "verifier":
        print(json.dumps(report, indent=2))
    return 0
