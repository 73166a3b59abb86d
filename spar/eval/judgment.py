"""How well the refiner judges: LLMBar-style pairwise accuracy, and pointwise agreement with code.

    spar eval judgment --data LLMBar/Natural/dataset.json --model smollm2-135m-instruct
    spar eval judgment --pointwise --data judged.jsonl --model ...

Pairwise (LLMBar format: `input`, `output_1`, `output_2`, `label` 1 or 2;
LLMBar's own `dataset.json` files, a JSON array of such objects, or JSONL):
both outputs are judged pointwise (n votes each) and the higher value is
preferred; when the values tie or either is missing (the judge abstained),
a pairwise prompt decides. Each pair is evaluated in both orders. An
unreadable pairwise answer is an abstention, never "the first one": it
counts as a miss in accuracy and F1 and is reported under `abstained`.
Reported: accuracy over all 2 x pairs judgments, accuracy over answered
ones, positional agreement (among pairs answered in both orders, the share
where both orders pick the same output; null when none), macro F1.

Pointwise (`prompt`, `constraints`, `response` per line): the LLM judge's
label against the verifier's on verifiable constraints: accuracy, and
precision and recall of "No".
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from spar.backends.base import Backend, SamplingParams
from spar.errors import UserError
from spar.judge import LLMJudge, verifier_verdict
from spar.parsing import parse_preference
from spar.records import Instruction, RecordError, refuse_overwrite

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


def load_pairs(path: str | Path) -> list[PairRow]:
    """LLMBar rows from a dataset.json (JSON array) or JSONL file; a bad row raises RecordError naming it."""
    rows = []
    for where, obj in _rows(path):
        if not isinstance(obj, dict) or any(not isinstance(obj.get(k), str) for k in ("input", "output_1", "output_2")):
            raise RecordError(f"{where}: an LLMBar row needs string fields input, output_1, output_2")
        label = obj.get("label")
        if isinstance(label, bool) or label not in (1, 2):
            raise RecordError(f"{where}: label must be 1 or 2 (the better output), got {label!r}")
        rows.append(PairRow(obj["input"], obj["output_1"], obj["output_2"], label))
    if not rows:
        raise RecordError(f"{path}: no LLMBar rows; each needs input, output_1, output_2 and label")
    return rows


def load_pointwise(path: str | Path) -> list[tuple[Instruction, str]]:
    """(instruction, response) items from rows with prompt, constraints and response; bad rows name file:line."""
    from spar.constraints import get, is_soft

    items = []
    for where, obj in _rows(path):
        if not isinstance(obj, dict) or any(not isinstance(obj.get(k), str) for k in ("prompt", "response")):
            raise RecordError(f"{where}: a pointwise row needs string fields prompt and response, and constraints")
        constraints = obj.get("constraints") or []
        if not isinstance(constraints, list) or any(
                not isinstance(c, dict) or not isinstance(c.get("id"), str)
                or not isinstance(c.get("kwargs") or {}, dict) for c in constraints):
            raise RecordError(f"{where}: constraints must be a list of {{\"id\": ..., \"kwargs\": {{...}}}} objects")
        for c in constraints:
            if is_soft(c["id"]):
                continue
            try:
                get(c["id"]).validate(c.get("kwargs"))
            except (KeyError, ValueError) as e:
                raise RecordError(f"{where}: {e.args[0] if e.args else e}") from None
        items.append((Instruction(id=where, prompt=obj["prompt"], constraints=constraints), obj["response"]))
    if not items:
        raise RecordError(f"{path}: no rows; each needs prompt, constraints and response")
    return items


def _pairwise_choices(backend: Backend, asks: list[tuple[str, str, str]], seed: int) -> list[int | None]:
    """1 (A), 2 (B) or None (unreadable) for each (prompt, a, b), in one batched call."""
    if not asks:
        return []
    chats = [[{"role": "user", "content": PAIRWISE.format(prompt=p, a=a, b=b)}] for p, a, b in asks]
    outs = backend.generate(chats, SamplingParams(max_new_tokens=64, seed=seed))
    return [parse_preference(completions[0].text) for completions in outs]


def evaluate_pairs(rows: list[PairRow], judge: LLMJudge, backend: Backend, seed: int = 0) -> dict:
    items = []
    for r in rows:
        inst = Instruction(id="", prompt=r.input)
        items += [(inst, r.output_1), (inst, r.output_2)]
    verdicts = judge.judge(items)  # one batched call for every output
    picks: dict[tuple[int, int], int | None] = {}  # (row, order) -> the output preferred, None = abstained
    asks: list[tuple[int, int]] = []
    for k, r in enumerate(rows):
        values = {1: verdicts[2 * k].value, 2: verdicts[2 * k + 1].value}
        for o, (first, second) in enumerate(((1, 2), (2, 1))):
            if values[first] is not None and values[second] is not None and values[first] != values[second]:
                picks[k, o] = first if values[first] > values[second] else second
            else:  # tied, or the judge abstained on one: no evidence either way, ask for a preference
                asks.append((k, o))
    outs = {1: lambda r: r.output_1, 2: lambda r: r.output_2}
    orders = ((1, 2), (2, 1))
    choices = _pairwise_choices(
        backend, [(rows[k].input, outs[orders[o][0]](rows[k]), outs[orders[o][1]](rows[k])) for k, o in asks], seed)
    for (k, o), choice in zip(asks, choices):
        picks[k, o] = orders[o][choice - 1] if choice else None
    correct = sum(picks[k, o] == r.label for k, r in enumerate(rows) for o in (0, 1))
    abstained = sum(p is None for p in picks.values())
    both = [k for k in range(len(rows)) if picks[k, 0] is not None and picks[k, 1] is not None]
    golds = [r.label for r in rows for _ in (0, 1)]
    preds = [picks[k, o] for k in range(len(rows)) for o in (0, 1)]
    total = 2 * len(rows)
    return {"accuracy": correct / total if total else 0.0,
            "accuracy_answered": correct / (total - abstained) if total > abstained else None,
            "positional_agreement": sum(picks[k, 0] == picks[k, 1] for k in both) / len(both) if both else None,
            "f1": _macro_f1(golds, preds), "n_pairs": len(rows), "judgments": total, "abstained": abstained,
            "pairs_answered_both_orders": len(both)}


def _macro_f1(gold: list[int], pred: list[int | None]) -> float:
    """Macro F1 over labels 1 and 2; an abstention (None) is a miss of the gold label."""
    scores = []
    for c in (1, 2):
        tp = sum(g == c and p == c for g, p in zip(gold, pred))
        fp = sum(g != c and p == c for g, p in zip(gold, pred))
        fn = sum(g == c and p != c for g, p in zip(gold, pred))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / 2


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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True,
                   help="LLMBar dataset.json (a JSON array) or JSONL; "
                        "with --pointwise: rows of prompt, constraints, response")
    p.add_argument("--pointwise", action="store_true", help="agreement with the verifier on constraint instructions")
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--backend", default="hf", choices=["auto", "hf", "vllm", "openai"])
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the metrics JSON here")


def run(args: argparse.Namespace) -> int:
    from spar.backends import make_backend

    # everything that can be checked is checked before a model loads
    for flag, value in (("--n", args.n), ("--max-new-tokens", args.max_new_tokens)):
        if value < 1:
            raise UserError(f"{flag} {value}: must be at least 1")
    if args.out:
        out = Path(args.out)
        if out.is_dir():
            raise UserError(f"--out {args.out}: is a directory; give a file path for the metrics JSON")
        if out.exists() and out.resolve() == Path(args.data).resolve():
            raise UserError(f"--out {args.out}: is the --data file; writing the metrics there would destroy it. "
                            "Give another path")
        refuse_overwrite(args.out, "--out", {"--data": args.data})  # also a link or another name for it
    if args.pointwise:
        items = load_pointwise(args.data)
        asked = [(i.prompt, r, i.id) for i, r in items]
    else:
        rows = load_pairs(args.data)
        asked = [(r.input, o, f"{args.data} row {k + 1}") for k, r in enumerate(rows) for o in (r.output_1, r.output_2)]
    backend = make_backend(args.backend, args.model)
    from spar.commands.generate import check_context
    from spar.prompts import judge_chat

    check_context(backend, [judge_chat(p, r) for p, r, _ in asked], args.max_new_tokens, [w for _, _, w in asked])
    judge = LLMJudge(backend, n=args.n, max_new_tokens=args.max_new_tokens, seed=args.seed)
    metrics = pointwise_agreement(items, judge) if args.pointwise else evaluate_pairs(rows, judge, backend, args.seed)
    text = json.dumps(metrics, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0
