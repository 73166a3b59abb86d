"""The one protocol every generation backend implements.

    backend.generate(chats, params) -> list[list[Completion]]

`chats` is a batch of chat conversations (lists of `{"role", "content"}`
messages); the result holds, for each chat in input order, `params.n`
completions of the assistant's next turn. A chat that ends with an
assistant message is a prefill: the completion continues that message
(its text is not repeated in the completion). Backends know nothing of SPaR.

    backend.close()

releases everything the backend holds (weights, an engine's processes, its
GPU memory), so a training stage can have the memory; calling it again does
nothing, and a closed backend refuses to generate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, Sequence, runtime_checkable

from spar.errors import UserError

Chat = list[dict[str, str]]


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    """Samples per chat."""
    temperature: float = 0.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    """Stop strings; the text is cut right before the first one."""
    seed: int | None = 0
    """Fixed seed for reproducible sampling; None draws a fresh one."""
    repetition_penalty: float = 1.0
    """Above 1 makes a token that already occurs less likely (1 = off); as in transformers and vLLM the prompt's
    tokens count too. Small models loop without it under greedy decoding."""

    def __post_init__(self) -> None:
        # the values come from the user's settings and flags: a bad one is a UserError (one line in the CLI)
        if self.n < 1:
            raise UserError(f"SamplingParams.n={self.n}: need at least 1 sample per chat")
        if self.temperature < 0:
            raise UserError(f"SamplingParams.temperature={self.temperature}: must be >= 0 (0 = greedy)")
        if not 0 < self.top_p <= 1:
            raise UserError(f"SamplingParams.top_p={self.top_p}: must be in (0, 1]")
        if self.max_new_tokens < 1:
            raise UserError(f"SamplingParams.max_new_tokens={self.max_new_tokens}: must be >= 1")
        if not self.repetition_penalty > 0:
            raise UserError(f"SamplingParams.repetition_penalty={self.repetition_penalty}: must be > 0 (1 = off)")
        if isinstance(self.stop, str) or not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple([self.stop] if isinstance(self.stop, str) else self.stop))

    def with_(self, **changes) -> "SamplingParams":
        return replace(self, **changes)


class PromptTooLong(UserError):
    """A chat longer than the model can hold; `index` is its position in the batch, so a caller can name the
    file:line it came from."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    """"stop" (end of turn or a stop string) or "length" (hit max_new_tokens)."""


@runtime_checkable
class Backend(Protocol):
    name: str
    """The model this backend generates with (for records and logs)."""

    def generate(self, chats: Sequence[Chat], params: SamplingParams) -> list[list[Completion]]: ...

    def close(self) -> None:
        """Release the model and everything held for it; idempotent; after it, generate raises RuntimeError."""
        ...
