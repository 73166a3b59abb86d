"""The three roles of SPaR as chat messages: actor, judge, refiner.

* actor: the instruction itself, as the user turn;
* judge: check the response against every requirement of the instruction,
  step by step, list each unmet one, end with one verdict line (the hybrid
  judge adds a note saying which checkable requirements code found met and
  which not, and why);
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
Go through the requirements one by one and say whether the response meets each; name every requirement it misses. \
End with one final line: "Verdict: Yes" if it follows all of them, otherwise "Verdict: No"."""

REFINE_REQUEST = f"""Now rewrite the response so that it follows every requirement. \
Fix only what your critique found and keep everything else unchanged.
First write one or two sentences on what to change. \
Then write the full refined response between {REFINED_START} and {REFINED_END}."""


REWRITE_REQUEST = """Now write the response again so that it follows every requirement. \
Fix only what your critique found and keep everything else unchanged. Write only the new response."""


def actor_chat(prompt: str) -> Chat:
    return [{"role": "user", "content": prompt}]


def checked_note(met: list[str], unmet: list[tuple[str, str]]) -> str:
    """The hybrid judge's note on what code found: `met` requirements, `unmet` (requirement, why it fails)."""
    if not met and not unmet:
        return ""
    lines = ["These requirements were already checked by a program; take its findings as given and do not "
             "judge them again:"]
    lines += [f"- met: {req}" for req in met]
    lines += [f"- NOT met: {req} ({why})" for req, why in unmet]
    if unmet:
        lines.append("A requirement that is not met makes the verdict No.")
    return "\n" + "\n".join(lines) + "\n"


def judge_chat(prompt: str, response: str, note: str = "") -> Chat:
    """The judge's request; `note` is the hybrid judge's `checked_note` (build both with spar.judge.judge_request)."""
    if not isinstance(note, str):  # the old signature took a list of requirements and called them all met
        raise TypeError(f"judge_chat(note=...) takes the note text, got {type(note).__name__}; "
                        "use spar.judge.judge_request(instruction, response, hybrid)")
    return [{"role": "user", "content": JUDGE_TEMPLATE.format(prompt=prompt, response=response, checked=note)}]


def refine_chat(prompt: str, response: str, critique: str, note: str = "", prefill: bool = False) -> Chat:
    """Judge turn, the critique as the assistant's turn, then the refine request.

    With `prefill`, the refiner's answer is started with REFINED_START, so it
    writes the refined response at once (no reflection): small models that
    never produce the markers themselves can still refine.
    """
    chat = judge_chat(prompt, response, note) + [
        {"role": "assistant", "content": critique},
        {"role": "user", "content": REWRITE_REQUEST if prefill else REFINE_REQUEST},
    ]
    if prefill:
        chat.append({"role": "assistant", "content": REFINED_START + "\n"})
    return chat
