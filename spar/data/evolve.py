"""LLM evolution of seed instructions, as SPaR builds its training prompts.

    spar data evolve --in seeds.jsonl --out evolved.jsonl --backend openai --model M --base-url http://host:8000/v1

For each seed, a model is asked to make the instruction more specific with
a main constraint drawn from the taxonomy plus 1-3 compatible ones, and to
write the result between <instruction> markers; an answer of "None" (no
constraint fits) drops the seed. The constraints of an evolved instruction
are known only by their taxonomy class, so they are recorded as `soft:`
constraints for the LLM judge. Unparsable answers are retried with a new
seed; output is appended per batch, and a rerun skips finished seeds.
"""

from __future__ import annotations

import random
from typing import Sequence

from spar.backends.base import Backend, SamplingParams
from spar.parsing import parse_marked
from spar.records import Instruction

TAXONOMY = {
    "Format": ["length", "text format", "character format", "template", "punctuation", "numeric format"],
    "Content": ["keyword", "symbol", "sentence", "genre"],
    "General": ["language", "situation", "language style", "sentiment"],
}

EVOLVE_PROMPT = """Make the instruction below more specific by adding constraints to it.
Main constraint: a {main} constraint ({cls}).
Also add {k} other constraint(s) that fit together with it, of these kinds: {others}.
The new instruction must still make sense and be possible to follow. If no such constraint fits, answer None.

[Instruction]
{seed}

Write only the new instruction between <instruction> and </instruction>."""


def evolve_request(seed: Instruction, rng: random.Random) -> tuple[list[dict], list[str]]:
    cls = rng.choice(sorted(TAXONOMY))
    main = rng.choice(TAXONOMY[cls])
    pool = [(c, kind) for c, kinds in TAXONOMY.items() for kind in kinds if kind != main]
    extra = rng.sample(pool, rng.randint(1, 3))
    others = ", ".join(k for _, k in extra)
    prompt = EVOLVE_PROMPT.format(main=main, cls=cls, k=len(extra), others=others, seed=seed.prompt)
    kinds = [f"{cls}/{main}"] + [f"{c}/{k}" for c, k in extra]
    return [{"role": "user", "content": prompt}], kinds


def evolve(seeds: Sequence[Instruction], backend: Backend, seed: int = 0, retries: int = 2,
           max_new_tokens: int = 256, temperature: float = 0.7) -> list[Instruction | None]:
    """One evolved instruction per seed (None when the model answered None or never gave a parsable answer)."""
    out: list[Instruction | None] = [None] * len(seeds)
    todo = list(range(len(seeds)))
    for attempt in range(1 + retries):
        if not todo:
            break
        rngs = [random.Random(f"{seed}:{seeds[i].id}:{attempt}") for i in todo]
        requests = [evolve_request(seeds[i], r) for i, r in zip(todo, rngs)]
        params = SamplingParams(temperature=temperature, top_p=0.95, max_new_tokens=max_new_tokens, seed=seed + attempt)
        replies = backend.generate([chat for chat, _ in requests], params)
        again = []
        for i, (_, kinds), row in zip(todo, requests, replies):
            text = row[0].text
            evolved = parse_marked(text, "instruction")
            if evolved is not None:
                # each kind asked for becomes a soft constraint: the LLM judge, not code, checks it
                soft = [{"id": f"soft:{k.split('/')[1].replace(' ', '_')}", "kwargs": {"taxonomy": k}} for k in kinds]
                out[i] = Instruction(id=f"{seeds[i].id}-evo", prompt=evolved, constraints=soft,
                                     source=f"evolve:{seeds[i].source or 'seed'}", split=seeds[i].split)
            elif "none" not in text.lower():  # unparsable: ask again; an explicit None drops the seed
                again.append(i)
        todo = again
    return out
