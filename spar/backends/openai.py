"""Any OpenAI-compatible chat-completions server: vLLM, SGLang, llama.cpp, a hosted API, `spar serve`.

    backend = OpenAIBackend("meta-llama/Llama-3-8B-Instruct",
                            base_urls=["http://node1:8000/v1", "http://node2:8000/v1"],
                            api_key_env="OPENAI_API_KEY", concurrency=32)

Each chat becomes one POST to `<base_url>/chat/completions` asking for `n`
choices. Requests go out from a bounded thread pool, spread round-robin
over the base URLs; a request that meets 429, a 5xx, a timeout or a broken
connection is retried on the next URL after an exponential backoff with
full jitter, up to `max_retries` times. Results return in input order.
Only the standard library is used.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from spar.backends.base import Chat, Completion, SamplingParams

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend:
    def __init__(
        self,
        model: str,
        base_urls: Sequence[str] | str = ("http://127.0.0.1:8000/v1",),
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 16,
        timeout: float = 120.0,
        max_retries: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ):
        self.name = model
        self.base_urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not self.base_urls:
            raise ValueError("openai backend: give at least one base URL, e.g. http://127.0.0.1:8000/v1")
        self.api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        self.concurrency, self.timeout = concurrency, timeout
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self._next_url = itertools.cycle(range(len(self.base_urls)))
        self._lock = threading.Lock()
        self.closed = False

    def close(self) -> None:
        """Stop using the servers (they belong to whoever started them). Safe to call twice."""
        self.closed = True

    def generate(self, chats: Sequence[Chat], params: SamplingParams) -> list[list[Completion]]:
        if self.closed:
            raise RuntimeError(f"the openai backend for {self.name} was closed; build a new one to generate again")
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(chats)))) as pool:
            return list(pool.map(lambda ic: self._request(ic[1], params, ic[0]), enumerate(chats)))

    def _request(self, chat: Chat, params: SamplingParams, index: int) -> list[Completion]:
        body = {
            "model": self.name,
            "messages": chat,
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if chat and chat[-1]["role"] == "assistant":  # a prefill: vLLM's and SGLang's extension
            body.update(add_generation_prompt=False, continue_final_message=True)
        if params.seed is not None:
            body["seed"] = params.seed + index  # distinct but reproducible per request
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last_error = ""
        for attempt in range(self.max_retries + 1):
            with self._lock:
                url = self.base_urls[next(self._next_url)].rstrip("/") + "/chat/completions"
            try:
                req = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return _parse(json.loads(resp.read()), params.n, url)
            except urllib.error.HTTPError as e:
                if e.code not in RETRY_STATUS:
                    detail = e.read()[:300].decode(errors="replace")
                    raise RuntimeError(f"{url} answered HTTP {e.code}: {detail}") from None
                last_error = f"HTTP {e.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, json.JSONDecodeError) as e:
                last_error = f"{type(e).__name__}: {e}"
            if attempt < self.max_retries:
                time.sleep(random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt)))
        raise RuntimeError(f"request {index} failed {self.max_retries + 1} times; last error: {last_error}")


def _parse(payload: dict, n: int, url: str) -> list[Completion]:
    try:
        choices = sorted(payload["choices"], key=lambda c: c.get("index", 0))
        usage = payload.get("usage") or {}
        out = [
            Completion(
                text=c["message"]["content"] or "",
                prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0) // max(1, len(choices)),
                finish_reason="length" if c.get("finish_reason") == "length" else "stop",
            )
            for c in choices
        ]
    except (KeyError, TypeError) as e:
        raise json.JSONDecodeError(f"{url} gave a reply without choices[].message.content ({e})", "", 0) from None
    if len(out) != n:
        raise json.JSONDecodeError(f"{url} returned {len(out)} choices, asked for {n}", "", 0)
    return out
