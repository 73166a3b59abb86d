"""A backend whose replies are scripted: for tests that pin exact behaviour.

Replies are either queued in order (`enqueue`) or computed by a function of
the chat. Every call is recorded in `calls`, so a test can assert how many
backend calls a stage made and how large each batch was.

    backend = ScriptedBackend()
    backend.enqueue("first reply", "second reply")
    backend.generate([chat1, chat2], SamplingParams())
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Sequence

from spar.backends.base import Chat, Completion, SamplingParams


class ScriptedBackend:
    def __init__(
        self,
        replies: Sequence[str] = (),
        respond: Callable[[Chat, int], str] | None = None,
        name: str = "scripted",
        reply: str | None = None,
    ):
        """`respond(chat, sample_index)` answers whenever the queue is empty; `reply` is a fixed answer
        (usable from a config file: `backend: scripted, options: {reply: ...}`, for plumbing tests)."""
        self.name = name
        self.queue: deque[str] = deque(replies)
        self.respond = respond if reply is None else (lambda chat, i: reply)
        self.calls: list[tuple[list[Chat], SamplingParams]] = []
        self.closed = False

    def close(self) -> None:
        """Nothing to free; a closed scripted backend refuses to generate, like the others."""
        self.closed = True

    def enqueue(self, *replies: str) -> None:
        self.queue.extend(replies)

    def generate(self, chats: Sequence[Chat], params: SamplingParams) -> list[list[Completion]]:
        if self.closed:
            raise RuntimeError(f"the scripted backend {self.name} was closed; build a new one to generate again")
        self.calls.append(([list(c) for c in chats], params))
        out = []
        for chat in chats:
            row = []
            for i in range(params.n):
                if self.queue:
                    text = self.queue.popleft()
                elif self.respond is not None:
                    text = self.respond(chat, i)
                else:
                    raise RuntimeError(
                        f"ScriptedBackend ran out of replies at call {len(self.calls)}; "
                        "enqueue more or pass respond="
                    )
                row.append(Completion(text=text, prompt_tokens=0, completion_tokens=len(text.split())))
            out.append(row)
        return out
