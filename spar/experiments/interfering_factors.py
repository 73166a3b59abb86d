"""Interfering factors (the paper's Figure 4): do minimal preference pairs teach the target faster?

    spar experiment interfering-factors --config configs/experiments/interfering-cpu.yaml
    spar experiment interfering-factors --model tiny-random --pairs 8 --heldout 4 --eval-every 2 --out runs/exp/if

The paper's argument for refinement: pairs of independent samples differ in much besides what the instruction
asks for, and those differences interfere with learning it. Its synthetic check, rebuilt here in our own words:
the instruction asks for a short story in which a given share of the letters is uppercase (the target factor);
DPO runs once on pairs that differ only in that share, once on pairs that also differ in how the story opens and
ends (interfering factors), and the target factor of the policy's answers is tracked over the training steps.

Data. Training prompts ask for a story about one of TRAIN_SUBJECTS in one of TRAIN_PHRASINGS, with a share from
--ratios; the held-out prompts that measure the policy use other subjects and other phrasings (HELDOUT_*), so
nothing measured was trained on. The base stories are the model's own answers to the training (and held-out)
prompts, sampled once and cached in --out/stories.jsonl (a rerun with the same model and story settings reuses
them), cut to whole sentences. A training story is used when it has at least three sentences and misses its
asked share by more than --tolerance (nearly always: a model writes about 3-5% capitals).

* minimal: chosen = the story rewritten to the asked share (whole words uppercased, spread evenly: `with_ratio`),
  rejected = the story as the model wrote it. The two differ only in the target factor.
* interfering: the same chosen; rejected = the story with its first and last sentence taken from the next
  story (another subject's opening and ending), so it differs in the target factor and in both interfering
  factors.

Both conditions have the same prompts, chosen texts, number of pairs, seed, data order and steps; only the
rejected texts differ. The loss is the paper's, DPO (beta 0.1) plus 0.1 x SFT on chosen; the SFT term is the same
in both conditions. With plain DPO (--sft-weight 0) the 135M model drives the margin up by pushing its own
stories (the rejected) down, and its greedy answers never gained capitals in a CPU run's steps.

Training is the project's DPO: `spar.train.dpo.build_dpo_trainer` (TRL's DPOTrainer as `spar.train.common` sets
it up: use_cpu and fp32 on a CPU, no bf16, the reference log-probs computed once before the first step) and
`trainer.train()`, once per condition from the same starting model. The policy is followed by a TrainerCallback
(`Probe`): before the first update (step 0) and after every --eval-every optimizer steps (and after the last) it
looks at the policy in memory (eval mode, no gradients, then back to train mode). This is the simplest way that
measures the very run being trained: training in segments would restart the optimizer and the schedule at every
segment. The probe draws no random numbers (greedy decoding, plain forward passes) and the loss reads only
precomputed reference log-probs, so it leaves the training itself unchanged. No checkpoint is saved: the curves
are the result.

Measured per checkpoint and condition:
* the target factor of greedy answers to the held-out prompts: the produced share (uppercase letters / all
  letters; an answer without letters counts as 0), the mean absolute gap to the asked share, the share of
  answers within --tolerance; and how many answers' first sentence changed since step 0 (compared case-folded:
  a drift in the interfering factor, not in the target);
* what the policy has learned to prefer, on held-out pairs built from the model's stories to the held-out
  prompts (`probe_pairs`): "target" pairs differ only in the target factor (rewritten story over story),
  "interfering" pairs only in opening and ending (story over the story with the next one's). The margin is
  DPO's implicit reward with beta 1 and the step-0 policy as reference, averaged over the pairs. It moves long
  before greedy answers change, so it shows at CPU scale what the greedy measures may not: whether the
  interfering pairs spend their updates on the opening and ending instead of on the target.
Step 0 is the same model in both conditions and reads the same.

Writes into --out: interfering.json (settings, pair diagnostics, one point per checkpoint and condition),
table.txt, interfering.svg (every measure against the step, both conditions), answers.jsonl
(every held-out answer at every checkpoint), pairs_minimal.jsonl and pairs_interfering.jsonl (what DPO trained
on), and stories.jsonl (the cache). Nothing else is resumed: a rerun trains both conditions again.

--config FILE is a YAML mapping of these flags (`ratios: [0.25, 0.5]`, `eval_every: 4`); a flag given on the
command line wins over the file.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from spar.config import DPOSettings, ModelConfig, add_flags, flags_config
from spar.errors import UserError
from spar.experiments import save_result
from spar.records import Pair, read_jsonl, refuse_overwrite, write_jsonl

NAME = "interfering-factors"
OUTPUTS = ("interfering.json", "table.txt", "interfering.svg", "answers.jsonl", "pairs_minimal.jsonl",
           "pairs_interfering.jsonl")
CONDITIONS = ("minimal", "interfering")
DEFAULTS = {"pairs": "64", "heldout": "16", "ratios": "0.25,0.5,0.75,1.0", "tolerance": "0.1",
            "story_tokens": "128", "story_temperature": "0.7", "max_new_tokens": "96", "eval_every": "4",
            "epochs": "1", "lr": "3e-5", "beta": "0.1", "sft_weight": "0.1", "dpo_batch_size": "2",
            "max_length": "512", "lr_scheduler": "constant", "seed": "0", "out": "runs/exp/interfering"}
STORY_ROUNDS = 4  # sampling rounds to find --pairs usable stories before giving up

TRAIN_SUBJECTS = ("a lighthouse keeper", "a lost kitten", "a robot learning to paint", "a village baker",
                  "two rival chess players", "a girl who finds a map", "an old fisherman", "a talking tree",
                  "a boy and his kite", "a dragon afraid of fire", "a night at the museum", "a runaway balloon",
                  "a detective dog", "the first day of school", "a storm at sea", "a forgotten key",
                  "a mouse in a library", "a tired astronaut", "a garden that grows overnight", "a broken clock",
                  "a penguin who wants to fly", "a secret tunnel", "a street musician", "a snowman in spring")
HELDOUT_SUBJECTS = ("a shy giraffe", "a bridge builder", "a lonely satellite", "a bakery cat", "a lost umbrella",
                    "a king without a crown", "a desert caravan", "a toy soldier")
TRAIN_PHRASINGS = ("Write a short story about {subject}. Make {pct}% of its letters uppercase.",
                   "Tell a brief story about {subject} in which about {pct} percent of the letters are capitals.",
                   "Compose a short tale about {subject}; roughly {pct}% of all its letters should be uppercase.",
                   "I'd like a little story about {subject}. Uppercase letters should make up {pct}% of the "
                   "letters.")
HELDOUT_PHRASINGS = ("Write a few sentences of story about {subject}, with capital letters making up {pct}% of "
                     "all letters.",
                     "Short story, topic: {subject}. Share of uppercase letters: {pct}%.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from spar.commands.generate import add_backend_flags

    # every flag defaults to None, so a --config value fills only what the command line leaves out
    p.add_argument("--config", default=None, help="YAML mapping of these flags (the command line wins)")
    add_flags(p, ModelConfig, "actor.", rename={"name": "--model"}, exclude=("options",))
    p.add_argument("--pairs", default=None, help="preference pairs per condition (default 64)")
    p.add_argument("--heldout", default=None, help="held-out prompts the policy is measured on (default 16)")
    p.add_argument("--ratios", default=None, help="uppercase shares the prompts ask for (default 0.25,0.5,0.75,1.0)")
    p.add_argument("--tolerance", default=None, help="an answer within this of the asked share meets it "
                                                     "(default 0.1)")
    p.add_argument("--story-tokens", default=None, help="length limit of a base story (default 128)")
    p.add_argument("--story-temperature", default=None, help="sampling temperature of the base stories "
                                                             "(default 0.7)")
    p.add_argument("--max-new-tokens", default=None, help="length limit of a held-out answer (default 96)")
    p.add_argument("--eval-every", default=None, help="optimizer steps between measurements (default 4)")
    p.add_argument("--epochs", default=None, help="epochs over the pairs (default 1)")
    p.add_argument("--lr", default=None, help="DPO learning rate (default 3e-5: the paper's 2e-7 moves a 135M "
                                              "model too little in a CPU run's steps)")
    p.add_argument("--beta", default=None, help="DPO beta (default 0.1, the paper's)")
    p.add_argument("--sft-weight", default=None, help="weight of the SFT term on chosen (default 0.1, the "
                                                      "paper's; 0 = plain DPO)")
    p.add_argument("--dpo-batch-size", default=None, help="pairs per optimizer step (default 2)")
    p.add_argument("--max-length", default=None, help="token limit of prompt + response in training (default 512)")
    p.add_argument("--lr-scheduler", default=None, help="learning-rate schedule (default constant: every "
                                                        "checkpoint sees the same step size)")
    p.add_argument("--seed", default=None, help="story sampling, training and data order seed (default 0)")
    p.add_argument("--out", default=None, help="folder for the results and the story cache "
                                               "(default runs/exp/interfering)")
    add_backend_flags(p)
    # flag -> argparse dest, for reading --config keys back as flags
    p.set_defaults(_flag_dests={o: a.dest for a in p._actions for o in a.option_strings if o.startswith("--")})


@dataclass
class Settings:
    pairs: int
    heldout: int
    ratios: list[float]
    tolerance: float
    story_tokens: int
    story_temperature: float
    max_new_tokens: int
    eval_every: int
    seed: int
    out: str


def settings(args: argparse.Namespace) -> tuple[Settings, ModelConfig, DPOSettings]:
    """Every flag checked, before any file is read or model loaded; a bad one is a one-line UserError."""
    from spar.experiments.scaling import number

    get = lambda name: DEFAULTS[name] if getattr(args, name) is None else getattr(args, name)  # noqa: E731
    ratios = sorted({number(r.strip(), "--ratios", float, 0.0, 1.0) for r in str(get("ratios")).split(",")
                     if r.strip()})
    if not ratios:
        raise UserError(f"command line '--ratios {get('ratios')}': give comma-separated shares, e.g. 0.25,0.5,1.0")
    s = Settings(pairs=number(get("pairs"), "--pairs", int, 2), heldout=number(get("heldout"), "--heldout", int, 1),
                 ratios=ratios, tolerance=number(get("tolerance"), "--tolerance", float, 0.0, 1.0),
                 story_tokens=number(get("story_tokens"), "--story-tokens", int, 1),
                 story_temperature=number(get("story_temperature"), "--story-temperature", float, 0.0),
                 max_new_tokens=number(get("max_new_tokens"), "--max-new-tokens", int, 1),
                 eval_every=number(get("eval_every"), "--eval-every", int, 1),
                 seed=number(get("seed"), "--seed", int, 0), out=str(get("out")))
    train = dict(lr=number(get("lr"), "--lr", float, 0.0), epochs=number(get("epochs"), "--epochs", float, 0.0),
                 beta=number(get("beta"), "--beta", float, 0.0),
                 sft_weight=number(get("sft_weight"), "--sft-weight", float, 0.0),
                 batch_size=number(get("dpo_batch_size"), "--dpo-batch-size", int, 1),
                 max_length=number(get("max_length"), "--max-length", int, 1),
                 lr_scheduler=str(get("lr_scheduler")), seed=s.seed, precompute_ref_log_probs=True)
    try:
        dpo = DPOSettings(**train)
    except ValueError as e:  # DPOSettings' own checks name the train.dpo key; say which flags set it
        raise UserError(f"command line: {e} (set here by --lr, --epochs, --beta, --sft-weight, --dpo-batch-size, "
                        f"--lr-scheduler)") from None
    return s, flags_config(args, ModelConfig, "actor."), dpo


# ---- the task: prompts, the target factor, the two kinds of rewrite ---------------------------------------


@dataclass
class Prompt:
    id: str
    text: str
    ratio: float  # the asked share of uppercase letters


def prompt(index: int, split: str, s: Settings) -> Prompt:
    """The index-th prompt of `split`: train (subject, phrasing and asked share drawn with the seed) or heldout
    (laid out in turn, so every asked share, subject and phrasing is measured about equally often)."""
    if split == "train":
        rng = random.Random(f"{s.seed}:train:{index}")
        ratio, subject, phrasing = rng.choice(s.ratios), rng.choice(TRAIN_SUBJECTS), rng.choice(TRAIN_PHRASINGS)
    else:
        n = len(HELDOUT_SUBJECTS)
        subject = HELDOUT_SUBJECTS[index % n]
        ratio = s.ratios[(index + index // n) % len(s.ratios)]  # the next round of subjects gets other shares
        phrasing = HELDOUT_PHRASINGS[(index // 2) % len(HELDOUT_PHRASINGS)]
    return Prompt(f"{split}-{index}", phrasing.format(subject=subject, pct=round(100 * ratio)), ratio)


def uppercase_ratio(text: str) -> float:
    """Uppercase letters / letters (0 for a text without letters): the target factor."""
    letters = [c for c in text if c.isalpha()]
    return sum(c.isupper() for c in letters) / len(letters) if letters else 0.0


def with_ratio(text: str, ratio: float) -> str:
    """`text` with whole words uppercased, spread evenly, until `ratio` of its letters are uppercase.

    Walks the words in order and uppercases one when that brings the uppercase count so far closer to
    `ratio` x the letters so far; a word left alone keeps its case. Spaces and line breaks are kept.
    """
    parts = re.split(r"(\s+)", text)
    seen = upper = 0
    for k in range(0, len(parts), 2):  # even positions are words, odd ones the whitespace between them
        word = parts[k]
        letters = sum(c.isalpha() for c in word)
        if not letters:
            continue
        seen += letters
        goal, kept = ratio * seen, upper + sum(c.isupper() for c in word if c.isalpha())
        if abs(upper + letters - goal) < abs(kept - goal):
            parts[k], upper = word.upper(), upper + letters
        else:
            upper = kept
    return "".join(parts)


def whole_sentences(text: str) -> list[str]:
    """The story's sentences (Punkt, as the constraints count them), the last one dropped if it was cut off."""
    from spar.constraints.text import split_sentences

    found = split_sentences(text.strip())
    if found and not found[-1].rstrip().endswith((".", "!", "?", '"', "'", "\u201d", "\u2019")):
        found = found[:-1]
    return found


def cut_to_sentences(text: str) -> str:
    """`text` up to the end of its last whole sentence, its own line breaks and spacing kept."""
    found = whole_sentences(text)
    if not found:
        return ""
    text = text.strip()
    return text[: text.rindex(found[-1]) + len(found[-1])]


def story_parts(text: str) -> tuple[str, str, str] | None:
    """(opening sentence, what lies between, ending sentence) of a story cut to whole sentences; None below
    three sentences (nothing would be left in common)."""
    found = whole_sentences(text)
    if len(found) < 3:
        return None
    text = text.strip()
    start = text.index(found[0]) + len(found[0])
    end = text.rindex(found[-1])
    if end < start:
        return None
    return found[0], text[start:end], found[-1]


@dataclass
class Story:
    id: str
    prompt: str
    ratio: float
    text: str  # as the model wrote it, cut to whole sentences


def make_pairs(stories: list[Story]) -> dict[str, list[Pair]]:
    """Per condition, one pair per story (see the module docstring); story k's interfering rejected takes
    story k+1's opening and ending (the last story takes the first's)."""
    from spar.prompts import actor_chat
    from spar.selfplay.pairs import edit_distance

    parts = [story_parts(st.text) for st in stories]
    out: dict[str, list[Pair]] = {c: [] for c in CONDITIONS}
    for k, (st, (_, middle, _)) in enumerate(zip(stories, parts)):
        chosen = with_ratio(st.text, st.ratio)
        other_open, _, other_end = parts[(k + 1) % len(stories)]
        mixed = other_open + middle + other_end
        for condition, rejected in (("minimal", st.text), ("interfering", mixed)):
            out[condition].append(Pair(st.id, actor_chat(st.prompt), chosen, rejected, condition,
                                       edit_distance(chosen, rejected)))
    return out


def probe_pairs(stories: list[Story], tolerance: float) -> dict[str, list[tuple[str, str, str]]]:
    """Held-out (prompt, chosen, rejected) triples whose log-probs the probe follows, from the model's stories to
    the held-out prompts: `target` - the story rewritten to its asked share over the story (the target factor
    alone; stories that already meet their share left out); `interfering` - the story over itself with the next
    story's opening and ending (the interfering factors alone, case untouched; stories of 3+ sentences)."""
    target = [(st.prompt, with_ratio(st.text, st.ratio), st.text) for st in stories
              if st.text and abs(uppercase_ratio(st.text) - st.ratio) > tolerance]
    whole = [(st, story_parts(st.text)) for st in stories]
    whole = [(st, parts) for st, parts in whole if parts is not None]
    interfering = []
    for k, (st, (_, middle, _)) in enumerate(whole):
        other_open, _, other_end = whole[(k + 1) % len(whole)][1]
        if len(whole) > 1:
            interfering.append((st.prompt, st.text, other_open + middle + other_end))
    return {"target": target, "interfering": interfering}


def usable(story: Story, tolerance: float) -> str | None:
    """Why `story` cannot make a pair (None: it can)."""
    if story_parts(story.text) is None:
        return "under 3 whole sentences"
    if abs(uppercase_ratio(story.text) - story.ratio) <= tolerance:
        return "already meets its asked share"
    if abs(uppercase_ratio(with_ratio(story.text, story.ratio)) - story.ratio) > tolerance:
        return "too short to reach its share by whole words"
    return None


# ---- base stories: the model's own answers, cached ---------------------------------------------------------


def base_stories(model: ModelConfig, options: dict, s: Settings,
                 progress=print) -> tuple[list[Story], list[Story], dict]:
    """(`s.pairs` usable training stories in prompt order, one story per held-out prompt, counts: sampled, used,
    skipped and why).

    Cached in --out/stories.jsonl under the model and story settings: only prompts not in the cache are sampled,
    training prompts in rounds of fresh prompts until enough are usable (at most STORY_ROUNDS)."""
    cache_file = Path(s.out) / "stories.jsonl"
    key = {"model": model.name, "seed": s.seed, "story_tokens": s.story_tokens,
           "story_temperature": s.story_temperature}
    cached = read_jsonl(cache_file) if cache_file.is_file() else []
    mine = {r.get("id"): r for r in cached if isinstance(r, dict) and all(r.get(k) == v for k, v in key.items())
            and isinstance(r.get("prompt"), str) and isinstance(r.get("text"), str)}
    kept: list[Story] = []
    skipped: dict[str, int] = {}
    others = [r for r in cached if not (isinstance(r, dict) and all(r.get(k) == v for k, v in key.items()))]
    backend, index, generated = None, 0, 0
    try:
        for round_ in range(STORY_ROUNDS):
            want = s.pairs - len(kept)
            batch = [prompt(i, "train", s) for i in range(index, index + math.ceil((1.25 + round_ / 4) * want) + 2)]
            index += len(batch)
            missing = [p for p in batch if p.id not in mine or mine[p.id]["prompt"] != p.text]
            if missing:
                backend = backend or _open_backend(model, options)
                texts = _sample(backend, missing, s, seed=s.seed + round_)
                generated += len(missing)
                for p, text in zip(missing, texts):
                    mine[p.id] = {**key, "id": p.id, "prompt": p.text, "ratio": p.ratio, "text": text}
                write_jsonl(cache_file, others + list(mine.values()))
                progress(f"stories: sampled {len(missing)} (round {round_ + 1})")
            for p in batch:
                if len(kept) == s.pairs:
                    break
                story = Story(p.id, p.text, p.ratio, cut_to_sentences(mine[p.id]["text"]))
                why = usable(story, s.tolerance)
                if why:
                    skipped[why] = skipped.get(why, 0) + 1
                else:
                    kept.append(story)
            if len(kept) == s.pairs:
                break
        heldout = [prompt(i, "heldout", s) for i in range(s.heldout)]
        missing = [p for p in heldout if p.id not in mine or mine[p.id]["prompt"] != p.text]
        if missing and len(kept) == s.pairs:
            backend = backend or _open_backend(model, options)
            for p, text in zip(missing, _sample(backend, missing, s, seed=s.seed + STORY_ROUNDS)):
                mine[p.id] = {**key, "id": p.id, "prompt": p.text, "ratio": p.ratio, "text": text}
            generated += len(missing)
            write_jsonl(cache_file, others + list(mine.values()))
            progress(f"stories: sampled {len(missing)} for the held-out prompts")
    finally:
        if backend is not None:
            backend.close()  # no engine stays alive while training runs
    if len(kept) < s.pairs:
        reasons = ", ".join(f"{n} {why}" for why, n in skipped.items()) or "none sampled"
        raise UserError(f"--pairs {s.pairs}: only {len(kept)} of the model's stories make a pair ({reasons}); "
                        f"lower --pairs, raise --story-tokens, or use a model that writes stories")
    heldout_stories = [Story(p.id, p.text, p.ratio, cut_to_sentences(mine[p.id]["text"])) for p in heldout]
    return kept, heldout_stories, {"generated": generated, "used": len(kept), "skipped": skipped}


def _open_backend(model: ModelConfig, options: dict):
    from spar.backends import make_backend

    return make_backend(model.backend, model.name, **options)


def _sample(backend, prompts: list[Prompt], s: Settings, seed: int) -> list[str]:
    from spar.backends.base import SamplingParams
    from spar.prompts import actor_chat

    params = SamplingParams(n=1, temperature=s.story_temperature, top_p=0.9, max_new_tokens=s.story_tokens,
                            seed=seed)
    return [row[0].text for row in backend.generate([actor_chat(p.text) for p in prompts], params)]


# ---- training with a probe --------------------------------------------------------------------------------


def greedy_answers(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy answers of the model in memory (left-padded batches, the chat template as the backends use it);
    the model's train/eval mode is restored afterwards."""
    import torch

    from spar.prompts import actor_chat

    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = model.generation_config.eos_token_id
    eos = list(eos) if isinstance(eos, (list, tuple)) else [eos] if eos is not None else []
    eos += [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos else []
    texts = []
    try:
        for start in range(0, len(prompts), batch_size):
            ids = [tokenizer(tokenizer.apply_chat_template(actor_chat(p), tokenize=False, add_generation_prompt=True),
                             add_special_tokens=False)["input_ids"] for p in prompts[start:start + batch_size]]
            width = max(len(x) for x in ids)
            device = next(model.parameters()).device
            input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=device)
            attention = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=device)
            with torch.no_grad():
                out = model.generate(input_ids=input_ids, attention_mask=attention, max_new_tokens=max_new_tokens,
                                     do_sample=False, temperature=None, top_p=None, top_k=None, pad_token_id=pad,
                                     eos_token_id=eos, use_cache=True)
            for row in out[:, width:].tolist():
                cut = next((j for j, t in enumerate(row) if t in eos), len(row))
                texts.append(tokenizer.decode(row[:cut], skip_special_tokens=True))
    finally:
        model.train(was_training)
    return texts


def completion_logps(model, tokenizer, items: list[tuple[str, str]], batch_size: int = 4) -> list[float]:
    """Sum of the log-probs the model gives each (prompt, completion)'s completion tokens (its end-of-turn marker
    included), the prompt rendered with the chat template; right-padded batches, no gradients."""
    import torch

    from spar.prompts import actor_chat

    was_training = model.training
    model.eval()
    rows = []
    for prompt_text, completion in items:
        chat = actor_chat(prompt_text)
        head = tokenizer(tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True),
                         add_special_tokens=False)["input_ids"]
        full = tokenizer(tokenizer.apply_chat_template(chat + [{"role": "assistant", "content": completion}],
                                                       tokenize=False), add_special_tokens=False)["input_ids"]
        rows.append((full, len(head)))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = []
    try:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            width = max(len(full) for full, _ in chunk)
            device = next(model.parameters()).device
            ids = torch.tensor([full + [pad] * (width - len(full)) for full, _ in chunk], device=device)
            attention = torch.tensor([[1] * len(full) + [0] * (width - len(full)) for full, _ in chunk],
                                     device=device)
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
            token_logps = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
            for row, (full, head) in enumerate(chunk):  # position j predicts token j + 1
                out.append(token_logps[row, head - 1:len(full) - 1].sum().item())
    finally:
        model.train(was_training)
    return out


def _probe_class():
    from transformers import TrainerCallback

    class Probe(TrainerCallback):
        """`look(model, tokenizer)` at step 0 and every `every` optimizer steps (and after the last)."""

        def __init__(self, every: int, look, progress):
            self.every, self.answer, self.progress = every, look, progress
            self.points: list[tuple[int, Any, float]] = []  # (step, what look returned, seconds it took)

        def _take(self, step: int, model, tokenizer) -> None:
            if self.points and self.points[-1][0] == step:
                return
            t = time.time()
            self.points.append((step, self.answer(model, tokenizer), time.time() - t))
            self.progress(*self.points[-1])

        def on_train_begin(self, args, state, control, model=None, processing_class=None, **kw):
            self._take(0, model, processing_class)

        def on_step_end(self, args, state, control, model=None, processing_class=None, **kw):
            if state.global_step % self.every == 0 or state.global_step >= state.max_steps:
                self._take(state.global_step, model, processing_class)

    return Probe


def train_condition(model_dir: Path, pairs: list[Pair], work: Path, dpo: DPOSettings, heldout: list[Prompt],
                    probes: dict[str, list[tuple[str, str, str]]], s: Settings, batch_size: int,
                    progress=lambda step, look, seconds: None) -> dict[str, Any]:
    """DPO on `pairs` through the project's trainer, with the probe; its points and the trainer's own numbers.

    At each point the probe takes the greedy answers to `heldout` and the log-probs of the chosen and rejected
    of every `probes` triple: {"answers": [...], "logps": {kind: [(chosen, rejected), ...]}}.
    `progress(step, look, seconds)` hears of every point as it is taken."""
    from spar.records import to_dict
    from spar.train.common import work_dir, write_data
    from spar.train.dpo import build_dpo_trainer

    from transformers import PrinterCallback

    data = write_data(work, [to_dict(p) for p in pairs])
    trainer, tokenizer = build_dpo_trainer(model_dir, data, work, dpo)
    trainer.remove_callback(PrinterCallback)  # its log dicts would land amid the table on stdout; they are kept below
    def look(model, tok) -> dict[str, Any]:
        tok = tok or tokenizer
        logps = {}
        for kind, triples in probes.items():
            flat = completion_logps(model, tok, [(p, text) for p, c, r in triples for text in (c, r)])
            logps[kind] = list(zip(flat[0::2], flat[1::2]))
        return {"answers": greedy_answers(model, tok, [h.text for h in heldout], s.max_new_tokens, batch_size),
                "logps": logps}

    probe = _probe_class()(s.eval_every, look, progress)
    trainer.add_callback(probe)
    t = time.time()
    trainer.train()
    logs = [e for e in trainer.state.log_history if "loss" in e]
    result = {"steps": trainer.state.global_step, "train_seconds": round(time.time() - t, 1),
              "points": probe.points,
              "log": [{k: e.get(k) for k in ("step", "loss", "rewards/accuracies", "rewards/margins")} for e in logs]}
    del trainer
    shutil.rmtree(work_dir(work), ignore_errors=True)
    from spar.models import free_memory

    free_memory()
    return result


def measure(heldout: list[Prompt], answers: list[str], first: list[str], tolerance: float) -> dict[str, Any]:
    """The target factor over the held-out answers, and how many openings changed since step 0 (`first`)."""
    produced = [uppercase_ratio(a) for a in answers]
    gaps = [abs(p - h.ratio) for p, h in zip(produced, heldout, strict=True)]
    by_asked: dict[str, list[float]] = {}
    for p, h in zip(produced, heldout):
        by_asked.setdefault(str(h.ratio), []).append(p)
    return {"mean_gap": sum(gaps) / len(gaps), "within": sum(g <= tolerance for g in gaps) / len(gaps),
            "mean_ratio": sum(produced) / len(produced),
            "opening_changed": sum(_opening(a) != _opening(b) for a, b in zip(answers, first)) / len(answers),
            "mean_words": sum(len(a.split()) for a in answers) / len(answers),
            "produced_by_asked": {k: sum(v) / len(v) for k, v in sorted(by_asked.items())}}


def margins(logps: list[tuple[float, float]], first: list[tuple[float, float]]) -> dict[str, float | None]:
    """DPO's implicit reward on held-out pairs, the policy at step 0 as the reference: the mean of
    (log p(chosen) - log p0(chosen)) - (log p(rejected) - log p0(rejected)), and the share of pairs above 0."""
    gains = [(c - c0) - (r - r0) for (c, r), (c0, r0) in zip(logps, first, strict=True)]
    if not gains:
        return {"margin": None, "accuracy": None}
    return {"margin": sum(gains) / len(gains), "accuracy": sum(g > 0 for g in gains) / len(gains)}


def _opening(text: str) -> str:
    from spar.constraints.text import split_sentences

    found = split_sentences(text.strip())
    return " ".join(found[0].casefold().split()) if found else ""


# ---- table, plot, run --------------------------------------------------------------------------------------


def _num(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


# (measure, column title, format) of the table
COLUMNS = (("mean_gap", "mean |gap|", ".3f"), ("within", "within {tol}", ".1%"),
           ("mean_ratio", "produced share", ".3f"), ("target_margin", "target margin", ".2f"),
           ("interfering_margin", "interf. margin", ".2f"))


def table(curves: dict[str, list[dict]], pair_stats: dict[str, dict], tolerance: float) -> str:
    """Per checkpoint, each measure for minimal (min) and interfering (intf) pairs side by side."""
    head = f"{'step':>5s}" + "".join(f" | {title.format(tol=tolerance):^15s}" for _, title, _ in COLUMNS)
    lines = [head, f"{'':5s}" + f" | {'min':>7s} {'intf':>7s}" * len(COLUMNS)]
    for a, b in zip(curves["minimal"], curves["interfering"]):
        lines.append(f"{a['step']:5d}" + "".join(f" | {_num(a[key], spec):>7s} {_num(b[key], spec):>7s}"
                                                 for key, _, spec in COLUMNS))
    for c in CONDITIONS:
        after = [p["mean_gap"] for p in curves[c] if p["step"] > 0]
        st = pair_stats[c]
        lines.append(f"{c}: {st['pairs']} pairs, token edit distance {st['mean_edit_distance']:.1f} (case folded "
                     f"{st['mean_edit_distance_casefolded']:.1f}); mean gap after step 0: "
                     f"{_num(sum(after) / len(after) if after else None, '.3f')}")
    lines.append("(gap: |produced - asked| share of uppercase letters of greedy held-out answers, lower is better; "
                 "margins: DPO's implicit reward (beta 1, step 0 as reference) on held-out pairs that differ only in "
                 "the target factor / only in opening and ending; min = minimal pairs, intf = interfering pairs)")
    return "\n".join(lines)


def plot(curves: dict[str, list[dict]], path: Path, tolerance: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("mean_gap", "mean |produced - asked| uppercase share"), ("within", f"answers within {tolerance}"),
              ("mean_ratio", "mean produced uppercase share"),
              ("target_margin", "held-out margin, target factor only"),
              ("interfering_margin", "held-out margin, opening/ending only"),
              ("opening_changed", "first sentence changed since step 0")]
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.6))
    for ax, (key, label) in zip(axes.flat, panels):
        for condition, style in zip(CONDITIONS, ("-o", "--s")):
            points = curves[condition]
            ax.plot([p["step"] for p in points], [float("nan") if p[key] is None else p[key] for p in points], style,
                    label=condition)
        ax.set_xlabel("DPO step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Interfering factors (SPaR Fig. 4): minimal vs interfering pairs")
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from spar.commands.generate import backend_options
    from spar.experiments.scaling import apply_config
    from spar.models import check_model_name
    from spar.selfplay.pairs import edit_distance
    from spar.train.common import resolve_model

    apply_config(args, getattr(args, "_flag_dests", {}), NAME)
    s, model, dpo = settings(args)  # bad flags stop here, before any file is read
    options = backend_options(args, model)
    refuse_overwrite(s.out, "--out", {"--config": args.config}, directory=True, writes=(*OUTPUTS, "stories.jsonl"))
    check_model_name(model.name, "--model")
    try:
        model_dir = resolve_model(model.name)  # training needs the model on disk; made once for spar's own models
    except FileNotFoundError as e:
        raise UserError(f"--model {model.name}: {e}") from None
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    t = time.time()
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    stories, heldout_stories, story_counts = base_stories(model, options, s, progress=log)
    pairs = make_pairs(stories)
    heldout = [prompt(i, "heldout", s) for i in range(s.heldout)]
    probes = probe_pairs(heldout_stories, s.tolerance)
    runs, curves, answers = {}, {}, []
    for condition in CONDITIONS:
        write_jsonl(out / f"pairs_{condition}.jsonl", pairs[condition])
        log(f"{condition}: DPO on {len(pairs[condition])} pairs")
        curve: list[dict] = []
        first: dict[str, Any] = {}

        def point(step: int, look: dict, seconds: float, condition=condition, curve=curve, first=first) -> None:
            first.update(first or look)  # step 0: the policy before any update is the reference of what follows
            texts = look["answers"]
            curve.append({"step": step, **measure(heldout, texts, first["answers"], s.tolerance),
                          **{f"{kind}_{k}": v for kind in probes
                             for k, v in margins(look["logps"][kind], first["logps"][kind]).items()},
                          "seconds": round(seconds, 1)})
            answers.extend({"condition": condition, "step": step, "prompt_id": h.id, "asked": h.ratio,
                            "produced": round(uppercase_ratio(a), 4), "text": a} for h, a in zip(heldout, texts))
            log(f"{condition} step {step}: mean gap {curve[-1]['mean_gap']:.3f}, produced share "
                f"{curve[-1]['mean_ratio']:.3f}, held-out target margin {_num(curve[-1]['target_margin'])}, "
                f"interfering margin {_num(curve[-1]['interfering_margin'])} ({seconds:.0f}s)")

        runs[condition] = train_condition(model_dir, pairs[condition], out / f".train-{condition}", dpo, heldout,
                                          probes, s, model.batch_size, progress=point)
        curves[condition] = curve
    write_jsonl(out / "answers.jsonl", answers)
    pair_stats = {c: {"pairs": len(ps), "mean_edit_distance": sum(p.edit_distance for p in ps) / len(ps),
                      # case folded away, what is left is what differs besides the target factor (0 for minimal)
                      "mean_edit_distance_casefolded": sum(edit_distance(p.chosen.casefold(), p.rejected.casefold())
                                                           for p in ps) / len(ps),
                      "mean_chosen_ratio": sum(uppercase_ratio(p.chosen) for p in ps) / len(ps),
                      "mean_rejected_ratio": sum(uppercase_ratio(p.rejected) for p in ps) / len(ps)}
                  for c, ps in pairs.items()}
    result = {"experiment": NAME, "model": model.name, "settings": asdict(s), "dpo": asdict(dpo),
              "stories": story_counts, "pairs": pair_stats, "heldout": [asdict(h) for h in heldout],
              "probe_pairs": {kind: len(triples) for kind, triples in probes.items()},
              "curves": curves, "training": {c: {k: v for k, v in r.items() if k != "points"} for c, r in runs.items()},
              "seconds": round(time.time() - t, 1)}
    save_result(out, "interfering", result, table(curves, pair_stats, s.tolerance),
                lambda path: plot(curves, path, s.tolerance))
    return 0
