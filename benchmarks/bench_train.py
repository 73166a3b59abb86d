"""Training speed on this machine: seconds per optimizer step of DPO and RFT, measured in one run.

    python benchmarks/bench_train.py [--model smollm2-135m-instruct] [--batch 2] [--examples 8] [--threads N]

Runs spar's own trainers (train_dpo / train_rft, the settings the loop
uses on a CPU) on synthetic chats of the lengths the CPU preset produces
(a ~60-token instruction, ~150-token responses; refine chats of ~450 tokens),
and prints per variant: s/step of the training loop (the trainer's own
timer), the whole call's wall time (load + reference pass + save included),
and the ratios that back the CPU defaults:

* DPO with reference log-probs precomputed / computed at every step
  (spar precomputes by default; the ratio says what that buys);
* LoRA (r=16, q/k/v/o) / full fine-tuning, for DPO and RFT.

`--threads` sets torch's thread count (default: torch's, one per core). On
a machine shared with other busy processes, fewer threads than cores can be
several times faster: the threads of one matrix product wait for each other.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from spar.config import DPOSettings, LoraSettings, RFTSettings
from spar.records import Pair, RFTExample
from spar.train.common import resolve_model
from spar.train.dpo import train_dpo
from spar.train.rft import train_rft

WORDS = ("the river light quiet morning city garden letter friend music window story travel simple "
         "careful answer bright winter reason number market paper colour heavy open slowly").split()


def text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words)).capitalize() + "."


def pairs(n: int, seed: int = 0) -> list[Pair]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        prompt = [{"role": "user", "content": f"Write about {rng.choice(WORDS)} in under 120 words. " + text(rng, 40)}]
        rejected = text(rng, 110)
        chosen = rejected[: len(rejected) // 2] + " " + text(rng, 50)  # a refinement keeps much of the negative
        out.append(Pair(f"b{k}", prompt, chosen, rejected))
    return out


def rft_examples(n: int, seed: int = 0) -> list[RFTExample]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        chat = [{"role": "user", "content": "Judge whether the response follows the instruction. " + text(rng, 150)},
                {"role": "assistant", "content": "No. " + text(rng, 60)},
                {"role": "user", "content": "Rewrite the response so that it follows the instruction."},
                {"role": "assistant", "content": text(rng, 150)}]
        out.append(RFTExample(chat, "refine", "bench"))
    return out


def run(label: str, fn) -> dict:
    started = time.time()
    out = fn()
    wall = time.time() - started
    m = json.loads((out / "train_metrics.json").read_text())
    train_seconds = m["train_seconds"]
    row = {"variant": label, "steps": m["steps"], "s_per_step": train_seconds / m["steps"], "wall": wall}
    print(f"{label:<34} {m['steps']:>5} {row['s_per_step']:>8.2f} {wall:>8.1f}", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--examples", type=int, default=8, help="pairs / chats per variant (steps = examples / batch)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    base = resolve_model(args.model)
    p, r = pairs(args.examples), rft_examples(args.examples)
    lora = LoraSettings()
    dpo = dict(lr=5e-6, epochs=1, batch_size=args.batch, max_length=768)
    rft = dict(lr=1e-5, epochs=1, batch_size=args.batch, max_length=1024)
    import os

    import torch

    print(f"model {args.model}, batch {args.batch}, {args.examples} examples per variant, "
          f"{torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'variant':<34} {'steps':>5} {'s/step':>8} {'wall s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        rows = {
            "dpo": run("DPO (precomputed ref log-probs)", lambda: train_dpo(base, p, out / "a", DPOSettings(**dpo))),
            "dpo_live": run("DPO (reference every step)", lambda: train_dpo(
                base, p, out / "b", DPOSettings(**dpo, precompute_ref_log_probs=False))),
            "dpo_lora": run("DPO LoRA", lambda: train_dpo(base, p, out / "c", DPOSettings(**dpo, lora=lora))),
            "rft": run("RFT", lambda: train_rft(base, r, out / "d", RFTSettings(**rft))),
            "rft_lora": run("RFT LoRA", lambda: train_rft(base, r, out / "e", RFTSettings(**rft, lora=lora))),
        }
    print()
    print(f"DPO wall, precomputed / live reference: {rows['dpo']['wall'] / rows['dpo_live']['wall']:.2f} "
          f"(s/step {rows['dpo']['s_per_step'] / rows['dpo_live']['s_per_step']:.2f})")
    print(f"s/step LoRA / full: DPO {rows['dpo_lora']['s_per_step'] / rows['dpo']['s_per_step']:.2f}, "
          f"RFT {rows['rft_lora']['s_per_step'] / rows['rft']['s_per_step']:.2f}")


if __name__ == "__main__":
    main()
