"""The openai backend against real HTTP servers on 127.0.0.1 that the test starts."""

import random
import threading
from collections import Counter

import pytest
from chat_server import ChatServer, choices, send_json

from spar.backends import SamplingParams, make_backend


class Server(ChatServer):
    """A chat-completions server; `fail_rate` of requests get 429/500 or a dropped connection."""

    def __init__(self, fail_rate=0.0, seed=0):
        self.rng = random.Random(seed)
        self.fail_rate = fail_rate
        self.answered = Counter()
        self.seen = []
        self.lock = threading.Lock()
        super().__init__()

    def answer(self, handler, body):
        with self.lock:
            self.seen.append((handler.headers.get("Authorization"), body))
            roll = self.rng.random()
        if roll < self.fail_rate / 3:
            handler.connection.close()  # drop the connection without an answer
            return
        if roll < self.fail_rate:
            handler.send_response(429 if roll < 2 * self.fail_rate / 3 else 500)
            handler.end_headers()
            return
        prompt = body["messages"][-1]["content"]
        with self.lock:
            self.answered[prompt] += 1
        send_json(handler, 200, {"choices": choices([f"{prompt}|{i}" for i in range(body["n"])]),
                                 "usage": {"prompt_tokens": 3, "completion_tokens": 2 * body["n"]}})


@pytest.fixture
def servers():
    made = []
    yield lambda **kw: made.append(Server(**kw)) or made[-1]
    for s in made:
        s.close()


def chats(k):
    return [[{"role": "user", "content": f"q{i}"}] for i in range(k)]


def test_order_n_and_api_key(servers, monkeypatch):
    s = servers()
    monkeypatch.setenv("MY_KEY", "sekrit")
    b = make_backend("openai", "m", base_urls=[s.url], api_key_env="MY_KEY", concurrency=8)
    out = b.generate(chats(20), SamplingParams(n=3, max_new_tokens=5, stop=("x",)))
    assert [[c.text for c in row] for row in out] == [[f"q{i}|{j}" for j in range(3)] for i in range(20)]
    auth, body = s.seen[0]
    assert auth == "Bearer sekrit"
    assert body["max_tokens"] == 5 and body["stop"] == ["x"] and body["model"] == "m"


def test_flaky_servers_every_request_answered_once_in_order(servers):
    """A third of requests fail (429, 500, dropped connections); retries spread over two servers."""
    a, b = servers(fail_rate=0.35, seed=1), servers(fail_rate=0.35, seed=2)
    backend = make_backend("openai", "m", base_urls=[a.url, b.url], concurrency=6, backoff=0.001, max_retries=30, timeout=5)
    out = backend.generate(chats(60), SamplingParams(n=1))
    assert [row[0].text for row in out] == [f"q{i}|0" for i in range(60)]
    answered = a.answered + b.answered
    assert answered == Counter({f"q{i}": 1 for i in range(60)})
    assert a.answered and b.answered  # the load was spread over both
    assert len(a.seen) + len(b.seen) > 60  # failures really happened and were retried


def test_gives_up_with_a_clear_error(servers):
    s = servers(fail_rate=1.0)
    backend = make_backend("openai", "m", base_urls=[s.url], max_retries=2, backoff=0.001, timeout=2)
    with pytest.raises(RuntimeError, match="failed 3 times"):
        backend.generate(chats(1), SamplingParams())
