"""The three roles of SPaR as chat messages: actor, judge, refiner.

* actor: the instruction itself, as the user turn;
* judge: check the response against every requirement of the instruction,
  step by step, list each unmet one, end with one verdict line;
* refine: a third turn after the judge prompt and the judge's critique, as
  in the paper: reflect briefly, then write the refined response between
  REFINED_START and REFINED_END, changing as little as possible.

The wording is short on purpose: the default model has 135M parameters
and runs on a CPU, where every prompt token costs time.
"""

from __future__ import annotations

from spar.backends.base import Chat
from spar.parsing import REFINED_END, REFINED_START

JUDGE_TEMPLATE = """Check whether the response follows every requirement of the instruction.

[Instruction]
{prompt}

[Response]
{response}
{checked}
Go through the requirements one by one and say whether the response meets each; name every requirement it misses. End with one final line: "Verdict: Yes" if it follows all of them, otherwise "Verdict: No"."""

REFINE_REQUEST = f"""Now rewrite the response so that it follows every requirement. Fix only what your critique found and keep everything else unchanged.
First write one or two sentences on what to change. Then write the full refined response between {REFINED_START} and {REFINED_END}."""


REWRITE_REQUEST = """Now write the response again so that it follows every requirement. Fix only what your critique found and keep everything else unchanged. Write only the new response."""


def actor_chat(prompt: str) -> Chat:
    return [{"role": "user", "content": prompt}]


def judge_chat(prompt: str, response: str, checked: list[str] | None = None) -> Chat:
    """The judge's request; `checked` lists requirements already verified by code (hybrid judge)."""
    note = ""
    if checked:
        lines = "\n".join(f"- {c}" for c in checked)
        note = f"\nThese requirements were already checked by a program and are met; do not judge them again:\n{lines}\n"
    return [{"role": "user", "content": JUDGE_TEMPLATE.format(prompt=prompt, response=response, checked=note)}]


def refine_chat(prompt: str, response: str, critique: str, checked: list[str] | None = None,
                prefill: bool = False) -> Chat:
    """Judge turn, the critique as the assistant's turn, then the refine request.

    With `prefill`, the refiner's answer is started with REFINED_START, so it
    writes the refined response at once (no reflection): small models that
    never produce the markers themselves can still refine.
    """
    chat = judge_chat(prompt, response, checked) + [
        {"role": "assistant", "content": critique},
        {"role": "user", "content": REWRITE_REQUEST if prefill else REFINE_REQUEST},
    ]
    if prefill:
        chat.append({"role": "assistant", "content": REFINED_START + "\n"})
    return chat
