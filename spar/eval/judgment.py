"""How well the refiner judges: LLMBar-style pairwise accuracy, and pointwise agreement with code.

    spar eval judgment --data llmbar.jsonl --model smollm2-135m-instruct
    spar eval judgment --pointwise --data judged.jsonl --model ...

Pairwise (LLMBar format: `input`, `output_1`, `output_2`, `label` 1 or 2):
both outputs are judged pointwise (n votes each) and the higher value is
preferred; a tie is broken by a pairwise prompt. Each pair is evaluated in
both orders; reported: accuracy (mean over both orders), positional
agreement (both orders pick the same output) and macro F1 over the labels.

Pointwise (`prompt`, `constraints`, `response` per line): the LLM judge's
label against the verifier's on verifiable constraints: accuracy, and
precision and recall of "No".
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from spar.backends.base import Backend, SamplingParams
from spar.judge import LLMJudge, verifier_verdict
from spar.parsing import parse_preference
from spar.records import Instruction, RecordError, iter_jsonl

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


def load_pairs(path: str | Path) -> list[PairRow]:
    rows = []
    for lineno, obj in enumerate(iter_jsonl(path), start=1):
        where = f"{path}:{lineno}"
        if not isinstance(obj, dict) or any(not isinstance(obj.get(k), str) for k in ("input", "output_1", "output_2")):
            raise RecordError(f"{where}: an LLMBar row needs string fields input, output_1, output_2")
        if obj.get("label") not in (1, 2):
            raise RecordError(f"{where}: label must be 1 or 2, got {obj.get('label')!r}")
        rows.append(PairRow(obj["input"], obj["output_1"], obj["output_2"], obj["label"]))
    return rows


def _pairwise_choice(backend: Backend, prompt: str, a: str, b: str, seed: int) -> int | None:
    chat = [{"role": "user", "content": PAIRWISE.format(prompt=prompt, a=a, b=b)}]
    return parse_preference(backend.generate([chat], SamplingParams(max_new_tokens=64, seed=seed))[0][0].text)


def evaluate_pairs(rows: list[PairRow], judge: LLMJudge, backend: Backend, seed: int = 0) -> dict:
    items = []
    for r in rows:
        inst = Instruction(id="", prompt=r.input)
        items += [(inst, r.output_1), (inst, r.output_2)]
    verdicts = judge.judge(items)  # one batched call for every output
    correct, agree, preds, golds = 0, 0, [], []
    for k, r in enumerate(rows):
        v1, v2 = (verdicts[2 * k].value or 0.0), (verdicts[2 * k + 1].value or 0.0)
        picks = []
        for order in ((1, 2), (2, 1)):
            outs = {1: r.output_1, 2: r.output_2}
            vals = {1: v1, 2: v2}
            first, second = order
            if vals[first] != vals[second]:
                pick = first if vals[first] > vals[second] else second
            else:
                choice = _pairwise_choice(backend, r.input, outs[first], outs[second], seed)
                pick = order[choice - 1] if choice else first
            picks.append(pick)
            correct += pick == r.label
            preds.append(pick)
            golds.append(r.label)
        agree += picks[0] == picks[1]
    n = max(1, len(rows))
    return {"accuracy": correct / (2 * n), "positional_agreement": agree / n, "f1": _macro_f1(golds, preds), "n_pairs": len(rows)}


def _macro_f1(gold: list[int], pred: list[int]) -> float:
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
    p.add_argument("--data", required=True, help="LLMBar-format JSONL, or with --pointwise: prompt/constraints/response")
    p.add_argument("--pointwise", action="store_true", help="agreement with the verifier on constraint instructions")
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--backend", default="hf", choices=["hf", "vllm", "openai"])
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the metrics JSON here")


def run(args: argparse.Namespace) -> int:
    from spar.backends import make_backend

    if args.pointwise:
        items = []
        for lineno, obj in enumerate(iter_jsonl(args.data), start=1):
            if not isinstance(obj, dict) or not isinstance(obj.get("response"), str) or not isinstance(obj.get("prompt"), str):
                raise RecordError(f"{args.data}:{lineno}: a pointwise row needs prompt, constraints and response")
            items.append((Instruction(id=str(lineno), prompt=obj["prompt"], constraints=obj.get("constraints") or []), obj["response"]))
    else:
        rows = load_pairs(args.data)
    backend = make_backend(args.backend, args.model)
    judge = LLMJudge(backend, n=args.n, max_new_tokens=args.max_new_tokens, seed=args.seed)
    metrics = pointwise_agreement(items, judge) if args.pointwise else evaluate_pairs(rows, judge, backend, args.seed)
    text = json.dumps(metrics, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0
