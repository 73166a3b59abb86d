"""Greedy answers of the embedded model with and without a repetition penalty, on the loop's held-out instructions.

    python benchmarks/bench_repetition_penalty.py [--n 80] [--penalties 1.0,1.1,1.2,1.3] [--backend auto]

Half the embedded model's answers loop until max_new_tokens ("I'm here to help you ... I'm here to help you
..."), and a looping answer fails most constraints however well it began. This measures, on the same held-out
instructions the CPU presets evaluate (synthesized as `spar run` does: seeds, phrasings and kinds training never
sees), what `eval.repetition_penalty` / `sample.repetition_penalty` change, all in one run on one engine:
prompt- and instruction-level accuracy (seen kinds, unseen kinds), the share of answers cut at max_new_tokens,
and the share of repeated word 4-grams. Each penalty is compared with 1.0 on the same prompts (wins/losses of
prompt-level verdicts and a two-sided sign test), so a difference is read against its noise.
"""

from __future__ import annotations

import argparse
import sys
import time
from math import comb
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spar.backends import SamplingParams, make_backend  # noqa: E402
from spar.config import HELDOUT_KINDS  # noqa: E402
from spar.constraints import is_soft, verify  # noqa: E402
from spar.data.synth import synthesize  # noqa: E402
from spar.prompts import actor_chat  # noqa: E402


def repeated_4grams(text: str) -> float:
    words = text.split()
    grams = [tuple(words[i:i + 4]) for i in range(len(words) - 3)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def sign_test(wins: int, losses: int) -> float:
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--backend", default="auto")
    p.add_argument("--n", type=int, default=80, help="held-out instructions (cpu-quality.yaml: 800 x 0.1 = 80)")
    p.add_argument("--synth", type=int, default=800, help="instructions synthesized (data.n)")
    p.add_argument("--penalties", default="1.0,1.1,1.2,1.3")
    p.add_argument("--max-new-tokens", type=int, default=256)
    args = p.parse_args()

    items = [i for i in synthesize(args.synth, 0, 0.1, heldout_kinds=HELDOUT_KINDS) if i.split == "heldout"]
    items = [i for i in items if any(not is_soft(c["id"]) for c in i.constraints)][: args.n]
    unseen = set(HELDOUT_KINDS)
    backend = make_backend(args.backend, args.model)
    chats = [actor_chat(i.prompt) for i in items]
    rows, verdicts = [], {}
    for penalty in [float(x) for x in args.penalties.split(",")]:
        t = time.time()
        outs = backend.generate(chats, SamplingParams(max_new_tokens=args.max_new_tokens,
                                                      repetition_penalty=penalty))
        seconds = time.time() - t
        ok = []
        groups = {"seen": [0, 0], "unseen": [0, 0]}
        for inst, row in zip(items, outs):
            hard = [c for c in inst.constraints if not is_soft(c["id"])]
            passed = verify(row[0].text, hard).passed
            ok.append(passed)
            g = "unseen" if any(c["id"] in unseen for c in hard) else "seen"
            groups[g][0] += passed
            groups[g][1] += 1
        verdicts[penalty] = ok
        print(f"penalty {penalty}: {sum(ok)}/{len(ok)} prompts pass, {seconds:.0f}s", file=sys.stderr, flush=True)
        rows.append((penalty, sum(ok) / len(ok), groups, sum(r[0].finish_reason == "length" for r in outs) / len(outs),
                     sum(repeated_4grams(r[0].text) for r in outs) / len(outs), seconds))
    backend.close()

    base = verdicts[rows[0][0]]
    print(f"{len(items)} held-out instructions, greedy, max_new_tokens {args.max_new_tokens}, {args.backend} backend")
    print(f"{'penalty':>8} {'prompt':>7} {'seen':>11} {'unseen':>11} {'cut':>6} {'rep4':>6} {'vs first':>16} {'s':>6}")
    for penalty, acc, g, cut, rep, seconds in rows:
        wins = sum(a and not b for a, b in zip(verdicts[penalty], base))
        losses = sum(b and not a for a, b in zip(verdicts[penalty], base))
        print(f"{penalty:>8.2f} {acc:>7.1%} {g['seen'][0]:>4}/{g['seen'][1]:<3} {g['unseen'][0]:>4}/{g['unseen'][1]:<3}"
              f" {cut:>6.1%} {rep:>6.2f} {f'+{wins}/-{losses} p={sign_test(wins, losses):.2f}':>16} {seconds:>6.0f}")


if __name__ == "__main__":
    main()
