"""Decoding scaling (the paper's Figure 5): answer quality against the budget of generated responses.

    spar experiment scaling --config configs/experiments/scaling-cpu.yaml
    spar experiment scaling --model smollm2-135m-instruct --judge hybrid --n 32 --budgets 1,2,4,8,16 \\
        --strategies greedy,best_of_n,bfs,dfs --out runs/exp/scaling
    spar experiment scaling --model M --ifeval-data ifeval.jsonl --n 100   # IFEval strict/loose too

For each strategy and budget, the held-out instructions are decoded with `spar.decoding.decode` (greedy,
best-of-N picked by the judge, BFS/DFS refinement of the greedy answer) and every answer is scored by the
verifier: prompt level (all checkable constraints of an instruction met) and instruction level (pooled over
constraints); with --ifeval-data, IFEval strict and loose as the official code scores them.

Counted as the paper counts: every response generated (actor answers and refinements alike, including ones
that could not be parsed) against the budget; judge calls (responses judged, and the LLM judge's votes) apart.
The counts come from counting wrappers around the backends, not from the decoder's own bookkeeping, so a
strategy that overspends shows up. Greedy ignores the budget: it is measured once and drawn flat.

Writes --out/scaling.json (the settings and one row per strategy x budget), --out/table.txt (the printed
table) and --out/scaling.svg (one curve per strategy, budget on a log2 axis). Nothing is resumed: a rerun
recomputes every cell.

--config FILE is a YAML mapping of these flags (`budgets: [1, 2, 4]`, `max_new_tokens: 64`); a flag given on
the command line wins over the file.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from spar.config import JudgeConfig, ModelConfig, SearchConfig, add_flags, flags_config
from spar.constraints import is_soft, verify
from spar.decoding import STRATEGIES
from spar.errors import UserError
from spar.experiments import save_result
from spar.judge import Item, Judge, Verdict
from spar.records import Instruction, read_instructions, refuse_overwrite

OUTPUTS = ("scaling.json", "table.txt", "scaling.svg")  # what the experiment writes into --out
SEARCH_FLAGS = ("branch", "select", "max_depth", "gate", "temperature", "max_new_tokens", "prefill")
SYNTH_N = 32  # synthesized held-out instructions when neither --data nor --ifeval-data is given
DEFAULTS = {"n": None, "budgets": "1,2,4,8,16", "strategies": ",".join(STRATEGIES), "out": "runs/exp/scaling",
            "max_new_tokens": "192", "temperature": "0.9", "seed": "0", "refiner": None, "data": None,
            "ifeval_data": None}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from spar.commands.generate import add_backend_flags

    # every flag defaults to None, so a --config value fills only what the command line leaves out
    p.add_argument("--config", default=None, help="YAML mapping of these flags (the command line wins)")
    add_flags(p, ModelConfig, "actor.", rename={"name": "--model"}, exclude=("options",))
    p.add_argument("--refiner", default=None, help="refiner and judge model (default: --model)")
    add_flags(p, JudgeConfig, "judge.", rename={"kind": "--judge"}, prefix="--judge-")
    add_flags(p, SearchConfig, "search.", prefix="--search-", only=SEARCH_FLAGS)
    p.add_argument("--data", default=None, help="JSONL of Instruction records to decode (default: synthesized "
                                                "held-out instructions)")
    p.add_argument("--ifeval-data", default=None, help="IFEval-format JSONL to decode; adds IFEval strict/loose")
    p.add_argument("--n", default=None, help="instructions: synthesized held-out ones (default 32), or the first N "
                                             "of --data / --ifeval-data (default: all)")
    p.add_argument("--budgets", default=None, help="generated responses allowed per instruction (default 1,2,4,8,16)")
    p.add_argument("--strategies", default=None, help=f"comma-separated, of {', '.join(STRATEGIES)} (default: all)")
    p.add_argument("--max-new-tokens", default=None, help="length limit of an actor answer (default 192)")
    p.add_argument("--temperature", default=None, help="best-of-N sampling temperature (default 0.9)")
    p.add_argument("--seed", default=None, help="synthesis and sampling seed (default 0)")
    p.add_argument("--out", default=None, help="folder for scaling.json, table.txt, scaling.svg "
                                               "(default runs/exp/scaling)")
    add_backend_flags(p)
    # flag -> argparse dest, for reading --config keys back as flags
    p.set_defaults(_flag_dests={o: a.dest for a in p._actions for o in a.option_strings if o.startswith("--")})


@dataclass
class Settings:
    n: int | None
    budgets: list[int]
    strategies: list[str]
    max_new_tokens: int
    temperature: float
    seed: int
    out: str
    data: str | None
    ifeval_data: str | None
    refiner: str | None


def apply_config(args: argparse.Namespace, parser_actions: dict[str, str], experiment: str = "scaling") -> None:
    """Fill flags the command line left out from the --config YAML; an unknown key is a UserError naming
    `spar experiment <experiment>`."""
    if not args.config:
        return
    import yaml

    path = Path(args.config)
    if not path.is_file():
        raise UserError(f"--config {args.config}: no such file; give a YAML file of this experiment's flags")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"--config {args.config}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise UserError(f"--config {args.config}: expected a mapping of flags (max_new_tokens: 64), "
                        f"got {type(raw).__name__}")
    for key, value in raw.items():
        flag = "--" + str(key).replace("_", "-")
        dest = parser_actions.get(flag)
        if flag.startswith("--no-") and dest is not None:  # `no_search_prefill: true` would read as prefill: true
            raise UserError(f"--config {args.config}: write {key[3:]!r}: false, not {key!r}")
        if dest is None or flag == "--config":
            raise UserError(f"--config {args.config}: {key!r} is not a flag of `spar experiment {experiment}`; "
                            f"see `spar experiment {experiment} --help`")
        if getattr(args, dest) is not None:
            continue  # the command line wins
        if isinstance(value, list):
            value = ",".join(str(v) for v in value) if dest not in ("base_url",) else [str(v) for v in value]
        elif dest == "base_url":
            value = [str(value)]
        setattr(args, dest, value if isinstance(value, bool) else str(value))


def _int_list(text: str, flag: str, low: int = 1) -> list[int]:
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise UserError(f"command line '{flag} {text}': give comma-separated integers, e.g. 1,2,4,8") from None
    if not values or min(values) < low:
        raise UserError(f"command line '{flag} {text}': each must be >= {low}")
    return sorted(set(values))


def number(text: Any, flag: str, kind, low: float, high: float | None = None) -> Any:
    """`text` of command-line `flag` as `kind` (int or float) within [low, high]; else a one-line UserError."""
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise UserError(f"command line '{flag} {text}': must be {'an integer' if kind is int else 'a number'}") \
            from None
    if value != value or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise UserError(f"command line '{flag} {text}': must be {bound}")
    return value


def settings(args: argparse.Namespace) -> tuple[Settings, ModelConfig, JudgeConfig, SearchConfig]:
    """Every flag checked, before any file is read or model loaded; a bad one is a one-line UserError."""
    get = lambda name: DEFAULTS[name] if getattr(args, name) is None else getattr(args, name)  # noqa: E731
    strategies = [s.strip() for s in str(get("strategies")).split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise UserError(f"command line '--strategies {get('strategies')}': choose from {', '.join(STRATEGIES)}")
    if args.data and args.ifeval_data:
        raise UserError("--data and --ifeval-data: give one of them (Instruction records, or IFEval-format rows)")
    s = Settings(
        n=None if get("n") is None else number(get("n"), "--n", int, 1),
        budgets=_int_list(get("budgets"), "--budgets"), strategies=list(dict.fromkeys(strategies)),
        max_new_tokens=number(get("max_new_tokens"), "--max-new-tokens", int, 1),
        temperature=number(get("temperature"), "--temperature", float, 0.0),
        seed=number(get("seed"), "--seed", int, 0), out=str(get("out")), data=get("data"),
        ifeval_data=get("ifeval_data"), refiner=get("refiner"))
    search = flags_config(args, SearchConfig, "search.")
    return s, flags_config(args, ModelConfig, "actor."), flags_config(args, JudgeConfig, "judge."), search


def load_instructions(s: Settings) -> tuple[list[Instruction], list | None]:
    """The instructions to decode and, for IFEval-format data, their rows (for IFEval scoring)."""
    if s.ifeval_data:
        from spar.data.ifeval_rows import load_ifeval

        rows = load_ifeval(s.ifeval_data)[: s.n]
        return [r.to_instruction() for r in rows], rows
    if s.data:
        return read_instructions(s.data)[: s.n], None
    from spar.data.synth import synthesize

    # heldout=1.0: every instruction is built from the held-out frames and phrasings (about half with a
    # held-out constraint kind), the same construction as the loop's held-out split
    return synthesize(s.n or SYNTH_N, seed=s.seed, heldout=1.0), None


class Counted:
    """A backend that counts what it generates: calls and completions (every sample of every chat)."""

    def __init__(self, inner):
        self.inner, self.name = inner, inner.name
        self.calls = self.completions = 0

    def generate(self, chats, params):
        outs = self.inner.generate(chats, params)
        self.calls += 1
        self.completions += sum(len(row) for row in outs)
        return outs

    def __getattr__(self, name):  # check_prompts, close, ... of the wrapped backend
        return getattr(self.inner, name)


class CountedJudge:
    """A judge that counts the (instruction, response) judgments it is asked for."""

    def __init__(self, inner: Judge):
        self.inner, self.items = inner, 0

    def judge(self, items: Sequence[Item]) -> list[Verdict]:
        self.items += len(items)
        return self.inner.judge(items)


def verifier_scores(instructions: list[Instruction], texts: list[str]) -> dict[str, Any]:
    """Prompt level (all checkable constraints met) and instruction level (pooled) over instructions that have
    checkable constraints; soft constraints are the LLM judge's and are not scored here."""
    prompts = passed = constraints = met = 0
    for inst, text in zip(instructions, texts, strict=True):
        hard = [c for c in inst.constraints if not is_soft(c["id"])]
        if not hard:
            continue
        result = verify(text, hard)
        prompts += 1
        passed += result.passed
        constraints += len(hard)
        met += len(hard) - len(result.failed)
    return {"prompt_level": passed / prompts if prompts else None,
            "inst_level": met / constraints if constraints else None, "scored": prompts}


@dataclass
class Cell:
    strategy: str
    budget: int
    prompt_level: float | None
    inst_level: float | None
    scored: int  # instructions with checkable constraints
    instructions: int
    responses: int  # every generated response: actor answers and refinements
    max_responses_per_instruction: int
    judge_calls: int  # (instruction, response) judgments asked for
    judge_votes: int  # LLM judge completions (0 for the verifier judge)
    seconds: float
    ifeval: dict[str, float] | None = None
    note: str = ""
    answers: list[str] = field(default_factory=list, repr=False)


def run_cell(strategy: str, budget: int, instructions, rows, actor, refiner, judge_backend, judge_cfg: JudgeConfig,
             search: SearchConfig, s: Settings) -> Cell:
    """Decode every instruction once with `strategy` at `budget`; a fresh judge, so no verdict is reused."""
    from spar.judge import judge_from_config
    from spar.decoding import decode

    a, r, j = Counted(actor), Counted(refiner), Counted(judge_backend) if judge_backend is not None else None
    judge = CountedJudge(judge_from_config(judge_cfg, j, s.seed))
    t = time.time()
    answers = decode(instructions, a, judge, r, strategy=strategy, budget=budget, max_new_tokens=s.max_new_tokens,
                     temperature=s.temperature, search=search, seed=s.seed)
    seconds = time.time() - t
    texts = [d.text for d in answers]
    ifeval = None
    if rows is not None:
        from spar.eval.ifeval import score

        sc = score(rows, texts)
        ifeval = {"prompt_strict": sc.prompt_strict, "inst_strict": sc.inst_strict,
                  "prompt_loose": sc.prompt_loose, "inst_loose": sc.inst_loose}
    v = verifier_scores(instructions, texts)
    return Cell(strategy, budget, v["prompt_level"], v["inst_level"], v["scored"], len(instructions),
                a.completions + r.completions, max(d.generated for d in answers), judge.items,
                j.completions if j is not None else 0, round(seconds, 3), ifeval, answers=texts)


def run_grid(instructions, rows, actor, refiner, judge_backend, judge_cfg, search, s: Settings,
             progress=print) -> list[Cell]:
    """One Cell per strategy x budget, in that order; greedy is decoded once and repeated at every budget."""
    cells = []
    for strategy in s.strategies:
        greedy = None
        for budget in s.budgets:
            if strategy == "greedy" and greedy is not None:
                cells.append(Cell(**{**asdict(greedy), "budget": budget, "answers": greedy.answers,
                                     "note": "greedy ignores the budget: measured once"}))
                continue
            cell = run_cell(strategy, budget, instructions, rows, actor, refiner, judge_backend, judge_cfg, search, s)
            if strategy == "greedy":
                greedy = cell
                cell.note = "greedy ignores the budget: measured once"
            cells.append(cell)
            progress(f"{strategy:10s} budget {budget:3d}: prompt {_pct(cell.prompt_level)}  "
                     f"responses {cell.responses}  judge calls {cell.judge_calls}  {cell.seconds:.1f}s")
    return cells


def _pct(x: float | None) -> str:
    return "   n/a" if x is None else f"{100 * x:6.2f}"


def table(cells: list[Cell]) -> str:
    ifeval = any(c.ifeval for c in cells)
    head = f"{'strategy':10s} {'budget':>6s} {'prompt':>7s} {'inst':>7s}"
    head += f" {'IF-p-s':>7s} {'IF-i-s':>7s} {'IF-p-l':>7s} {'IF-i-l':>7s}" if ifeval else ""
    head += f" {'responses':>9s} {'max/inst':>8s} {'judged':>7s} {'votes':>6s} {'seconds':>8s}"
    lines = [head]
    for c in cells:
        line = f"{c.strategy:10s} {c.budget:6d} {_pct(c.prompt_level):>7s} {_pct(c.inst_level):>7s}"
        if ifeval:
            line += "".join(f" {_pct((c.ifeval or {}).get(k)):>7s}"
                            for k in ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose"))
        line += (f" {c.responses:9d} {c.max_responses_per_instruction:8d} {c.judge_calls:7d} {c.judge_votes:6d}"
                 f" {c.seconds:8.1f}")
        lines.append(line)
    n = cells[0].instructions if cells else 0
    scored = cells[0].scored if cells else 0
    lines.append(f"(verifier scores in %, over the {scored} of {n} instructions with checkable constraints; "
                 f"responses = every generated response, judged = judgments asked for, votes = LLM judge samples)")
    return "\n".join(lines)


def plot(cells: list[Cell], path: Path) -> None:
    """One curve per strategy, budget on a log2 axis; greedy is a flat line (it ignores the budget)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("prompt_level", "verifier, prompt level (%)")]
    if any(c.ifeval for c in cells):
        panels.append(("ifeval", "IFEval prompt-level loose (%)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    budgets = sorted({c.budget for c in cells})
    for ax, (key, label) in zip(axes[0], panels):
        for strategy in dict.fromkeys(c.strategy for c in cells):
            mine = [c for c in cells if c.strategy == strategy]
            ys = [(c.ifeval or {}).get("prompt_loose") if key == "ifeval" else c.prompt_level for c in mine]
            ys = [None if y is None else 100 * y for y in ys]
            style = {"linestyle": "--"} if strategy == "greedy" else {"marker": "o"}
            ax.plot([c.budget for c in mine], [float("nan") if y is None else y for y in ys], label=strategy, **style)
        ax.set_xscale("log", base=2)
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.set_xlabel("budget (generated responses per instruction)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Decoding scaling (SPaR Fig. 5)")
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from spar.commands.generate import backend_options, check_context

    apply_config(args, getattr(args, "_flag_dests", {}))
    s, model, judge_cfg, search = settings(args)  # bad flags stop here, before any file is read
    options = backend_options(args, model)
    refuse_overwrite(s.out, "--out", {"--data": s.data, "--ifeval-data": s.ifeval_data, "--config": args.config},
                     directory=True, writes=OUTPUTS)
    needs_judge = any(x != "greedy" for x in s.strategies)
    if needs_judge and judge_cfg.kind == "verifier":
        print("note: the verifier judges and scores here, so best-of-N and search see the score itself",
              file=sys.stderr)
    instructions, rows = load_instructions(s)
    from spar.backends import make_backend

    actor = make_backend(model.backend, model.name, **options)
    refiner = make_backend(model.backend, s.refiner, **options) if s.refiner else actor
    check_context(actor, [[{"role": "user", "content": i.prompt}] for i in instructions], s.max_new_tokens,
                  [f"instruction {i.id}" for i in instructions])
    judge_backend = refiner if judge_cfg.kind != "verifier" else None
    t = time.time()
    cells = run_grid(instructions, rows, actor, refiner, judge_backend, judge_cfg, search, s,
                     progress=lambda m: print(m, file=sys.stderr))
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"experiment": "scaling", "model": model.name, "refiner": s.refiner or model.name,
              "judge": asdict(judge_cfg), "search": asdict(search), "settings": asdict(s),
              "instructions": [i.id for i in instructions], "seconds": round(time.time() - t, 1),
              "rows": [{k: v for k, v in asdict(c).items() if k != "answers"} for c in cells]}
    save_result(out, "scaling", result, table(cells), lambda path: plot(cells, path))
    return 0
