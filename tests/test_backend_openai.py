"""The openai backend against real HTTP servers on 127.0.0.1 that the test starts."""

import asyncio
import random
import sys
import threading
import time
from collections import Counter

import pytest
from chat_server import ChatServer, choices, send_json

from spar.backends import SamplingParams, make_backend
from spar.backends.openai import ServerError, request_seed


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
    backend = make_backend("openai", "m", base_urls=[a.url, b.url], concurrency=6, backoff=0.001, max_retries=30,
                           timeout=5)
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


# ---- retries, rotation and the protocol, against a server that follows a plan ----------------


class Planned(ChatServer):
    """Request i gets plan[i] (then "ok"): an HTTP status, (status, headers), "badjson", "nochoices", "toomany" or
    "ok". A reply holds min(n, max_n) choices, choice i saying "<seed + i>" (or "-" without a seed); each
    request's body, arrival time and client port are kept, and the most requests ever in flight at once."""

    def __init__(self, plan=(), max_n=None, delay=0.0, keep_alive=False):
        self.plan, self.max_n, self.delay = list(plan), max_n, delay
        self.seen, self.times, self.ports, self.auth = [], [], [], []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        super().__init__(keep_alive=keep_alive)

    def answer(self, handler, body):
        with self.lock:
            self.seen.append(body)
            self.times.append(time.monotonic())
            self.ports.append(handler.client_address[1])
            self.auth.append(handler.headers.get("Authorization"))
            what = self.plan.pop(0) if self.plan else "ok"
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1
        if isinstance(what, int):
            send_json(handler, what, {"error": {"message": f"status {what}"}})
        elif isinstance(what, tuple):
            send_json(handler, what[0], {"error": {"message": f"status {what[0]}"}}, headers=what[1])
        elif what == "badjson":
            send_broken_json(handler)
        elif what == "nochoices":
            send_json(handler, 200, {"object": "chat.completion", "usage": {}})
        else:
            n = body["n"] + 1 if what == "toomany" else min(body["n"], self.max_n or body["n"])
            seed = body.get("seed")
            send_json(handler, 200, {"choices": choices(["-" if seed is None else str(seed + i) for i in range(n)]),
                                     "usage": {"prompt_tokens": 3, "completion_tokens": 2 * n}})


def send_broken_json(handler):
    """A body of the length announced that is not JSON."""
    data = b'{"choices": [{"index": 0, "mess'
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@pytest.fixture
def planned():
    made = []

    def make(*plan, **kw):
        made.append(Planned(plan, **kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


def backend_for(*servers, **kw):
    kw.setdefault("backoff", 0)
    return make_backend("openai", "m", base_urls=[s.url for s in servers], api_key_env=None, **kw)


def test_retry_after_is_waited_out(planned):
    """A 429 saying Retry-After: 1 is asked again no sooner than a second later (not after the backoff alone)."""
    s = planned((429, {"Retry-After": "1"}))
    out = backend_for(s, max_backoff=0.01).generate(chats(1), SamplingParams(seed=None))
    assert [c.text for c in out[0]] == ["-"] and len(s.seen) == 2
    assert s.times[1] - s.times[0] >= 0.95


def test_retry_after_sends_the_retry_to_another_server_meanwhile(planned):
    a, b = planned((429, {"Retry-After": "30"})), planned()
    start = time.monotonic()
    backend_for(a, b).generate(chats(1), SamplingParams())
    assert time.monotonic() - start < 5 and len(a.seen) == len(b.seen) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_a_refused_request_is_not_retried(planned, status):
    s = planned(*[status] * 5)
    with pytest.raises(ServerError, match=rf"{s.url}/chat/completions answered HTTP {status} to request 0 for "
                                          rf"model 'm': .*status {status}"):
        backend_for(s, max_retries=4).generate(chats(1), SamplingParams())
    assert len(s.seen) == 1


@pytest.mark.parametrize("status", [408, 409, 429, 500, 503])
def test_timeouts_conflicts_and_server_errors_are_retried(planned, status):
    s = planned(status, status)
    out = backend_for(s, max_retries=2).generate(chats(1), SamplingParams(seed=None))
    assert [c.text for c in out[0]] == ["-"] and len(s.seen) == 3


def test_a_failing_url_is_taken_out_of_rotation_for_a_while(planned):
    """After down_after failures in a row a URL gets no requests while another one works; once down_for has
    passed it is tried again (and taken out again when it still fails)."""
    bad, good = planned(*[500] * 100), planned()
    backend = backend_for(bad, good, concurrency=1, down_after=3, down_for=1.5)
    out = backend.generate(chats(10), SamplingParams())
    assert len(out) == 10 and len(bad.seen) == 3 and len(good.seen) == 10
    time.sleep(1.6)
    backend.generate(chats(4), SamplingParams())
    assert len(bad.seen) == 4 and len(good.seen) == 14


def test_a_single_failing_url_is_still_tried(planned):
    """Out of rotation means passed over for another URL, never a request left unasked."""
    s = planned(500, 500, 500, 500)
    out = backend_for(s, down_after=2, down_for=60, max_retries=4).generate(chats(1), SamplingParams(seed=None))
    assert [c.text for c in out[0]] == ["-"] and len(s.seen) == 5


@pytest.mark.parametrize("max_n", [1, 2])
def test_n_is_emulated_for_a_server_that_ignores_it(planned, max_n):
    """A server that gives fewer choices than asked (llama.cpp ignores n) is asked again for the rest, choice j
    seeded seed + j: the samples vLLM would give for n at once."""
    s = planned(max_n=max_n)
    params = SamplingParams(n=5, seed=3, temperature=1.0)
    out = backend_for(s).generate(chats(2), params)
    for chat, row in zip(chats(2), out):
        first = request_seed(chat, params)
        assert [c.text for c in row] == [str(first + j) for j in range(5)]
        assert all(c.completion_tokens == 2 for c in row)
    assert len(s.seen) == 2 * (5 if max_n == 1 else 3)
    unseeded = backend_for(s).generate(chats(1), SamplingParams(n=3, seed=None))
    assert [c.text for c in unseeded[0]] == ["-"] * 3


def test_a_prefill_continues_the_final_message_through_extra_body(planned):
    s = planned()
    prefilled = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "The answer is"}]
    backend_for(s).generate([prefilled, chats(1)[0]], SamplingParams())
    bodies = {len(b["messages"]): b for b in s.seen}
    assert bodies[2]["continue_final_message"] is True and bodies[2]["add_generation_prompt"] is False
    assert bodies[2]["messages"] == prefilled
    assert "continue_final_message" not in bodies[1] and "add_generation_prompt" not in bodies[1]


def test_a_repetition_penalty_goes_in_extra_body_only_when_asked(planned):
    """vLLM's servers read `repetition_penalty` from the body; OpenAI's API has no such field, so 1.0 (off)
    sends nothing."""
    s = planned()
    backend_for(s).generate(chats(1), SamplingParams(repetition_penalty=1.2))
    backend_for(s).generate(chats(1), SamplingParams())
    assert [b.get("repetition_penalty") for b in s.seen] == [1.2, None]


@pytest.mark.parametrize("what, said", [("badjson", "replied with malformed JSON"),
                                        ("nochoices", "replied without choices"),
                                        ("toomany", "returned 3 choices, asked for 2")])
def test_a_reply_that_is_not_a_chat_completion_is_named_with_the_url(planned, what, said):
    s = planned(*[what] * 10)
    with pytest.raises(ServerError, match=rf"no answer from {s.url}/chat/completions: request 0 failed 2 times "
                                          rf"\(last error: {s.url}/chat/completions {said}.*OpenAI-compatible"):
        backend_for(s, max_retries=1).generate(chats(1), SamplingParams(n=2))
    assert len(s.seen) == 2


def test_a_bad_reply_is_retried(planned):
    s = planned("nochoices", "toomany")
    out = backend_for(s).generate(chats(1), SamplingParams(n=2, seed=None))
    assert [c.text for c in out[0]] == ["-", "-"] and len(s.seen) == 3


def test_connections_are_kept_open_across_requests_and_calls(planned):
    s = planned(keep_alive=True)
    backend = backend_for(s, concurrency=1)
    backend.generate(chats(3), SamplingParams())
    backend.generate(chats(3), SamplingParams())
    assert len(s.ports) == 6 and len(set(s.ports)) == 1
    backend.close()


def test_at_most_concurrency_requests_in_flight(planned):
    s = planned(delay=0.2)
    out = backend_for(s, concurrency=3).generate(chats(12), SamplingParams(n=2))
    assert [[c.text for c in row] for row in out] == [[str(request_seed(c, SamplingParams(n=2)) + j) for j in (0, 1)]
                                                       for c in chats(12)]
    assert 1 < s.most_in_flight <= 3  # in parallel, within the bound


def test_callers_in_threads_get_their_own_results_within_one_concurrency_bound(planned):
    """The search engine calls generate from a thread per tree on a `concurrent` backend: each caller gets the
    answers to its own chats, and all callers together keep within `concurrency`."""
    s = planned(delay=0.1)
    backend = backend_for(s, concurrency=3)
    assert backend.concurrent
    params = SamplingParams(n=2)
    asked = {k: [[{"role": "user", "content": f"caller {k} q{i}"}] for i in range(k)] for k in (2, 3, 4)}
    results = {}
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, backend.generate(asked[k], params)))
               for k in asked]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, cs in asked.items():
        assert [[c.text for c in row] for row in results[k]] == [[str(request_seed(c, params) + j) for j in (0, 1)]
                                                                  for c in cs]
    assert 1 < s.most_in_flight <= 3


def test_generate_from_inside_a_running_event_loop_and_without_a_key(planned):
    """generate() stays synchronous: an async caller (a server's handler) can call it; with no key set no
    Authorization header is sent."""
    s = planned()

    async def caller():
        return backend_for(s).generate(chats(2), SamplingParams())

    assert len(asyncio.run(caller())) == 2
    assert s.auth == [None, None]


def test_a_closed_backend_refuses_and_close_twice_is_safe(planned):
    backend = backend_for(planned())
    backend.generate(chats(1), SamplingParams())
    backend.close()
    backend.close()
    with pytest.raises(RuntimeError, match="closed"):
        backend.generate(chats(1), SamplingParams())


def test_missing_openai_package_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ImportError, match=r"pip install 'spar-llm\[openai\]'"):
        make_backend("openai", "m")
