"""IFEval: strict and loose instruction following, scored as the official code does.

    spar eval ifeval --model smollm2-135m-instruct --data ifeval.jsonl --limit 20
    spar eval ifeval --data ifeval.jsonl --responses responses.jsonl   # score existing answers

Answers are written to --out/responses.jsonl as they are generated; run the
same command again after an interruption and only the unanswered prompts
are generated (a half-written last line is dropped).

Strict: each instruction checks the response as it is. Loose: it passes if
any of 8 variants passes - the response, without its first line, without
its last line, without both, and each of those with every `*` removed.
Reported: prompt-level accuracy (all instructions of a prompt followed) and
instruction-level accuracy (pooled over all instructions), strict and
loose, their average, and a per-instruction-id breakdown.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from spar.constraints import get
from spar.data.ifeval_rows import IFEvalRow, load_ifeval
from spar.errors import UserError
from spar.records import JsonlAppender, RecordError, iter_lines, refuse_overwrite, write_jsonl


def loose_variants(response: str) -> list[str]:
    lines = response.split("\n")
    no_first = "\n".join(lines[1:]).strip()
    no_last = "\n".join(lines[:-1]).strip()
    no_both = "\n".join(lines[1:-1]).strip()
    return [response, response.replace("*", ""), no_first, no_last, no_both,
            no_first.replace("*", ""), no_last.replace("*", ""), no_both.replace("*", "")]


def follows(row: IFEvalRow, response: str, loose: bool) -> list[bool]:
    """Per instruction of `row`: is it followed by `response`?"""
    candidates = loose_variants(response) if loose else [response]
    out = []
    for cid, kwargs in zip(row.instruction_id_list, row.kwargs):
        constraint = get(cid)
        out.append(any(r.strip() and constraint.check(r, kwargs) for r in candidates))
    return out


@dataclass
class Score:
    prompt_strict: float
    inst_strict: float
    prompt_loose: float
    inst_loose: float
    per_instruction: dict[str, dict[str, float]]
    n_prompts: int

    @property
    def average(self) -> float:
        return (self.prompt_strict + self.inst_strict + self.prompt_loose + self.inst_loose) / 4

    def to_dict(self) -> dict:
        return {"prompt_level_strict": self.prompt_strict, "inst_level_strict": self.inst_strict,
                "prompt_level_loose": self.prompt_loose, "inst_level_loose": self.inst_loose,
                "average": self.average, "n_prompts": self.n_prompts, "per_instruction": self.per_instruction}

    def table(self) -> str:
        lines = [f"IFEval on {self.n_prompts} prompts",
                 f"  prompt-level strict  {100 * self.prompt_strict:6.2f}",
                 f"  inst-level strict    {100 * self.inst_strict:6.2f}",
                 f"  prompt-level loose   {100 * self.prompt_loose:6.2f}",
                 f"  inst-level loose     {100 * self.inst_loose:6.2f}",
                 f"  average              {100 * self.average:6.2f}",
                 "  per instruction id (count, strict, loose):"]
        for cid, d in sorted(self.per_instruction.items()):
            lines.append(f"    {cid:48s} {int(d['count']):4d} {100 * d['strict']:6.1f} {100 * d['loose']:6.1f}")
        return "\n".join(lines)


def score(rows: list[IFEvalRow], responses: list[str]) -> Score:
    per = defaultdict(lambda: {"count": 0, "strict": 0, "loose": 0})
    totals = {"ps": 0, "is": 0, "pl": 0, "il": 0, "n_inst": 0}
    for row, response in zip(rows, responses, strict=True):
        strict, loose = follows(row, response, False), follows(row, response, True)
        totals["ps"] += all(strict)
        totals["pl"] += all(loose)
        totals["is"] += sum(strict)
        totals["il"] += sum(loose)
        totals["n_inst"] += len(strict)
        for cid, s, lo in zip(row.instruction_id_list, strict, loose):
            per[cid]["count"] += 1
            per[cid]["strict"] += s
            per[cid]["loose"] += lo
    n, m = max(1, len(rows)), max(1, totals["n_inst"])
    per_rates = {cid: {"count": d["count"], "strict": d["strict"] / d["count"], "loose": d["loose"] / d["count"]}
                 for cid, d in per.items()}
    return Score(totals["ps"] / n, totals["is"] / m, totals["pl"] / n, totals["il"] / m, per_rates, len(rows))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--backend", default="hf", choices=["auto", "hf", "vllm", "openai"])
    p.add_argument("--data", default="hf:google/IFEval",
                   help="IFEval-format JSONL (or hf:google/IFEval with a network)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N prompts")
    p.add_argument("--responses", default=None, help="score existing responses: JSONL with prompt and response")
    p.add_argument("--out", default="runs/eval/ifeval", help="folder for metrics.json, table.txt, responses.jsonl")
    p.add_argument("--max-new-tokens", type=int, default=1280, help="1280 as in the official setting")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repetition-penalty", type=float, default=1.0,
                   help="of the greedy answers (1 = off, the official setting)")


OUTPUTS = ("responses.jsonl", "metrics.json", "table.txt")  # what `spar eval ifeval` writes into --out


def run(args: argparse.Namespace) -> int:
    # every flag and input is checked before a model loads or a file is written
    for flag, value, low in (("--limit", args.limit, 1), ("--max-new-tokens", args.max_new_tokens, 1),
                             ("--batch-size", args.batch_size, 1)):
        if value is not None and value < low:
            raise UserError(f"command line '{flag} {value}': must be >= {low}")
    refuse_overwrite(args.out, "--out", {"--data": None if str(args.data).startswith("hf:") else args.data,
                                         "--responses": args.responses}, directory=True, writes=OUTPUTS)
    all_rows = load_ifeval(args.data)
    rows = all_rows[: args.limit] if args.limit else all_rows
    out = Path(args.out)
    t = time.time()
    if args.responses:
        responses = responses_for(rows, args.responses, all_rows)
        out.mkdir(parents=True, exist_ok=True)
        write_jsonl(out / "responses.jsonl",
                    [{"key": row.key, "prompt": row.prompt, "response": resp} for row, resp in zip(rows, responses)])
    else:
        from spar.backends import SamplingParams, make_backend, resolve
        from spar.commands.generate import check_context

        params = SamplingParams(max_new_tokens=args.max_new_tokens, repetition_penalty=args.repetition_penalty)
        # answers are appended as they come, so a run cut short (a full IFEval run on a CPU takes about an hour)
        # resumes: the rerun answers only the prompts not yet in responses.jsonl
        out.mkdir(parents=True, exist_ok=True)
        path = out / "responses.jsonl"
        done = answered(path, args.model, args.max_new_tokens, args.repetition_penalty)
        todo = [r for r in rows if r.prompt not in done]
        if done and todo:
            print(f"resuming: {len(rows) - len(todo)} of {len(rows)} prompts already answered in {path}",
                  file=sys.stderr)
        if todo:
            options = {"batch_size": args.batch_size} if resolve(args.backend) == "hf" else {}
            backend = make_backend(args.backend, args.model, **options)
            chats = [[{"role": "user", "content": r.prompt}] for r in todo]
            check_context(backend, chats, args.max_new_tokens, [f"{args.data} key {r.key}" for r in todo])
            with JsonlAppender(path) as w:
                for i in range(0, len(todo), args.batch_size):
                    batch = todo[i:i + args.batch_size]
                    outs = backend.generate(chats[i:i + args.batch_size], params)
                    for row, completions in zip(batch, outs):
                        done[row.prompt] = completions[0].text
                        w.write({"key": row.key, "prompt": row.prompt, "response": completions[0].text,
                                 "model": args.model, "max_new_tokens": args.max_new_tokens,
                                 "repetition_penalty": args.repetition_penalty})
        responses = [done[r.prompt] for r in rows]
    result = score(rows, responses)
    (out / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2))
    (out / "table.txt").write_text(result.table() + "\n")
    print(result.table())
    print(f"({time.time() - t:.0f}s; metrics, table and responses in {out})")
    return 0


def answered(path: Path, model: str, max_new_tokens: int, repetition_penalty: float = 1.0) -> dict[str, str]:
    """Prompt -> response already in `path` (a torn last line from a crash is dropped first); refuses answers
    written by another model, length limit or repetition penalty, which a resumed run would mix into one score."""
    if not path.exists():
        return {}
    JsonlAppender(path).close()  # opening repairs a half-written last line
    done: dict[str, str] = {}
    for where, obj in iter_lines(path):
        if not (isinstance(obj, dict) and isinstance(obj.get("prompt"), str) and isinstance(obj.get("response"), str)):
            raise RecordError(f"{where}: each line needs string fields \"prompt\" and \"response\"; this is not "
                              f"an answers file of `spar eval ifeval`: give another --out")
        settings = (("model", model), ("max_new_tokens", max_new_tokens), ("repetition_penalty", repetition_penalty))
        for key, want in settings:
            if obj.get(key, want) != want:
                raise UserError(f"{where}: answered with {key}={obj[key]!r}, this run asks {key}={want!r}; resume "
                                f"with the same settings or give another --out")
        done[obj["prompt"]] = obj["response"]
    return done


def responses_for(rows: list[IFEvalRow], path: str, all_rows: list[IFEvalRow] | None = None) -> list[str]:
    """Responses from a JSONL of {prompt, response}, matched to rows by prompt text."""
    by_prompt: dict[str, str] = {}
    for where, obj in iter_lines(path):
        if not (isinstance(obj, dict) and isinstance(obj.get("prompt"), str) and isinstance(obj.get("response"), str)):
            raise RecordError(f"{where}: each line needs string fields \"prompt\" and \"response\"")
        by_prompt[obj["prompt"]] = obj["response"]
    if not by_prompt:
        raise RecordError(f"{path}: no responses in the file (it is empty or holds only blank lines); each line "
                          f"needs \"prompt\" and \"response\"")
    known = {r.prompt for r in (all_rows or rows)}
    unknown = [p for p in by_prompt if p not in known]
    if unknown:
        raise RecordError(f"{path}: {len(unknown)} prompt(s) are not in the IFEval data, e.g. {unknown[0][:80]!r}; "
                          "score responses against the data they answer (--data)")
    missing = [r for r in rows if r.prompt not in by_prompt]
    if missing:
        raise RecordError(f"{path}: no response for {len(missing)} prompt(s), e.g. key {missing[0].key}; "
                          "use --limit or give responses for every prompt")
    return [by_prompt[r.prompt] for r in rows]
