"""`spar serve`: the official `openai` client against a real server on a free loopback port.

Servers run in a thread (uvicorn on a socket bound to port 0) around a
scripted backend, whose replies are known exactly (an echo of the request,
so 200 concurrent answers can each be matched to their request), or the
tiny random model; one test starts the CLI in a subprocess and stops it
with SIGTERM. The engine's `Forest` (trees joining and leaving between
steps) is tested here too, as the server is what needs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")
import httpx  # noqa: E402  (in the test extra: newer openai releases no longer bring it)
import uvicorn  # noqa: E402

from spar.backends.scripted import ScriptedBackend  # noqa: E402
from spar.cli import main  # noqa: E402
from spar.config import JudgeConfig, SearchConfig  # noqa: E402
from spar.decoding import decode  # noqa: E402
from spar.judge import make_judge  # noqa: E402
from spar.records import Instruction  # noqa: E402
from spar.search.engine import Forest, Root, search_trees  # noqa: E402
from spar.serve.app import ServeSettings, create_app  # noqa: E402
from spar.serve.protocol import APIError, Defaults, Limits, parse_chat_request, pieces  # noqa: E402
from spar.serve.scheduler import Scheduler  # noqa: E402

PROMPT = "List two fruits without commas."
NO_COMMA = "punctuation:no_comma"


class LiveServer:
    """uvicorn serving `app` in a thread, on a socket bound to a free loopback port."""

    def __init__(self, app):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.time() < deadline, "the server did not start"
            time.sleep(0.02)

    def client(self, **kw) -> "openai.OpenAI":
        return openai.OpenAI(base_url=self.url + "/v1", api_key=kw.pop("api_key", "none"), max_retries=0, **kw)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        assert not self.thread.is_alive(), "the server did not shut down"


def serve(backend, refiner=None, judge=JudgeConfig(kind="verifier"), search=SearchConfig(), **settings):
    scheduler = Scheduler(backend, refiner, judge, search, window=0.005)
    return LiveServer(create_app(scheduler, ServeSettings(model=settings.pop("model", "m"), **settings))), scheduler


def echo_backend() -> ScriptedBackend:
    return ScriptedBackend(respond=lambda chat, i: f"echo: {chat[-1]['content']}" + (f" #{i}" if i else ""))


def fruit_script(chat, i):
    """Actor answers with a comma; the judge says No to commas; the second of three refinements drops it."""
    text = chat[-1]["content"]
    if "Now rewrite" in text:
        return "drop the comma\n<refined>apple and pear</refined>" if i == 1 else "<refined>apple, pear</refined>"
    if text.startswith("Check whether"):
        response = text.split("[Response]\n", 1)[1].split("\n", 1)[0]
        return "The response uses a comma.\nVerdict: No" if "," in response else "All met.\nVerdict: Yes"
    return "apple, pear"


def script_tokens(backend: ScriptedBackend, respond) -> int:
    """Every token the scripted backend generated (its completion_tokens are whitespace words)."""
    return sum(len(respond(chat, i).split()) for chats, params in backend.calls for chat in chats
               for i in range(params.n))


@pytest.fixture(scope="module")
def echo():
    server, scheduler = serve(echo_backend(), model="echo")
    yield server, scheduler
    server.stop()


# ---- the engine's forest: trees join and leave between steps ----

def test_forest_trees_joining_later_share_the_backend_calls_of_running_trees():
    backend = ScriptedBackend(respond=lambda chat, i: "<refined>still, wrong</refined>")
    judge = make_judge("verifier")
    inst = Instruction("a", "x", [{"id": "punctuation:no_comma", "kwargs": {}}])
    charged: dict = {}
    forest = Forest(backend, judge, SearchConfig(branch=2, max_depth=3, select=1),
                    charge=lambda key, n: charged.__setitem__(key, charged.get(key, 0) + n))
    assert forest.add("first", Root(inst, "a, b", "has a comma")) is None
    assert forest.step() == {}
    assert forest.add("second", Root(inst, "c, d", "has a comma"), SearchConfig(branch=2, max_depth=1)) is None
    assert len(backend.calls[-1][0]) == 1
    finished = forest.step()
    assert len(backend.calls[-1][0]) == 2, "the late tree's refinements went in the same batch as the running tree's"
    assert list(finished) == ["second"] and finished["second"].calls["refine"] == 2
    assert charged == {"first": 4 * 2, "second": 2 * 2}  # two words per refinement
    forest.drop("first")
    assert not forest and forest.step() == {}


def test_search_trees_is_unchanged_by_the_forest():
    """search_trees runs on Forest now; same trees, same calls as growing each tree alone."""
    backend = ScriptedBackend(respond=fruit_script)
    inst = Instruction("a", PROMPT, [{"id": "punctuation:no_comma", "kwargs": {}}])
    trees = search_trees([Root(inst, "apple, pear", "comma")] * 3, backend, make_judge("verifier"), SearchConfig())
    alone = search_trees([Root(inst, "apple, pear", "comma")], ScriptedBackend(respond=fruit_script),
                         make_judge("verifier"), SearchConfig())
    assert [t.nodes for t in trees] == [alone[0].nodes] * 3
    assert len(backend.calls) == 1 and len(backend.calls[0][0]) == 3


# ---- the wire format, without a server ----

def body(**fields) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": "hi"}], **fields}).encode()


@pytest.mark.parametrize("raw, status, param, code", [
    (b"{", 400, None, "invalid_json"),
    (b"[1]", 400, None, "invalid_json"),
    (b"{}", 400, "messages", "missing_required_parameter"),
    (json.dumps({"messages": []}).encode(), 400, "messages", None),
    (json.dumps({"messages": [{"role": "robot", "content": "x"}]}).encode(), 400, "messages[0].role", None),
    (json.dumps({"messages": [{"role": "user", "content": 3}]}).encode(), 400, "messages[0].content", None),
    (json.dumps({"messages": [{"role": "system", "content": "x"}]}).encode(), 400, "messages", None),
    (body(spar={"strategy": "beam"}), 400, "spar.strategy", "invalid_strategy"),
    (body(spar={"stratgy": "bfs"}), 400, "spar.stratgy", None),
    (body(spar={"budget": 0}), 400, "spar.budget", "invalid_value"),
    (body(spar={"budget": 17}), 400, "spar.budget", "limit_exceeded"),
    (body(spar={"constraints": [{"id": "nope"}]}), 400, "spar.constraints[0].id", None),
    (body(max_tokens=4096), 400, "max_tokens", "limit_exceeded"),
    (body(max_completion_tokens=0), 400, "max_completion_tokens", "invalid_value"),
    (body(n=9), 400, "n", "limit_exceeded"),
    (body(n="2"), 400, "n", None),
    (body(temperature=3), 400, "temperature", "invalid_value"),
    (body(top_p=0), 400, "top_p", "invalid_value"),
    (body(stop=["a", "b", "c", "d", "e"]), 400, "stop", "limit_exceeded"),
    (body(stream="yes"), 400, "stream", None),
    (body(tools=[{"type": "function"}]), 400, "tools", "unsupported_parameter"),
])
def test_bad_requests_are_400_naming_the_field(raw, status, param, code):
    with pytest.raises(APIError) as e:
        parse_chat_request(raw, Limits(), Defaults())
    assert (e.value.status, e.value.param, e.value.code) == (status, param, code)
    assert e.value.body()["error"]["type"] == "invalid_request_error" and e.value.message


def test_request_defaults_and_extension():
    r = parse_chat_request(body(), Limits(), Defaults(strategy="bfs", budget=6, max_tokens=32))
    assert (r.strategy, r.budget, r.max_tokens, r.n, r.stop, r.temperature) == ("bfs", 6, 32, 1, (), None)
    r = parse_chat_request(json.dumps({"messages": [{"role": "developer", "content": "be brief"},
                                                    {"role": "user", "content": [{"type": "text", "text": "a"},
                                                                                 {"type": "text", "text": "b"}]}],
                                       "stop": "\n", "spar": {"strategy": "dfs", "return_tree": True}}).encode())
    assert r.messages[0]["role"] == "system" and r.prompt == "ab" and r.stop == ("\n",) and r.return_tree


def test_stream_pieces_join_to_the_text():
    for text in ["", "one", "  two words\n\nand more  ", "a\tb"]:
        assert "".join(pieces(text)) == text


# ---- a live server ----

def test_completion_models_and_health(echo):
    server, _ = echo
    client = server.client()
    r = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hello"}])
    assert r.choices[0].message.content == "echo: hello" and r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == 2 and r.object == "chat.completion"
    assert r.model_extra["spar"]["strategy"] == "greedy"
    r = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}], n=3)
    assert [c.message.content for c in r.choices] == ["echo: hi", "echo: hi #1", "echo: hi #2"]
    assert [m.id for m in client.models.list()] == ["echo"]
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert e.value.param == "model" and "echo" in e.value.message


def test_streaming_gives_the_same_answer_in_openai_chunks(echo):
    server, _ = echo
    stream = server.client().chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "a streamed answer"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: a streamed answer"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    assert len([c for c in chunks if c.choices]) > 3, "the answer comes in several chunks"


def test_200_concurrent_requests_none_lost_or_mixed_up(echo):
    server, scheduler = echo
    before = scheduler.stats["answer_calls"]

    async def one(client, k):
        content = f"request {k}: {'x' * (k % 7)}"
        if k % 10 == 0:  # a few streams among them
            stream = await client.chat.completions.create(model="echo", stream=True,
                                                          messages=[{"role": "user", "content": content}])
            return k, "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        r = await client.chat.completions.create(model="echo", messages=[{"role": "user", "content": content}])
        return k, r.choices[0].message.content

    async def burst():
        async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0) as client:
            return await asyncio.gather(*(one(client, k) for k in range(200)))

    answers = asyncio.run(burst())
    assert len(answers) == 200
    for k, text in answers:
        assert text == f"echo: request {k}: {'x' * (k % 7)}", f"request {k} got another request's answer"
    calls = scheduler.stats["answer_calls"] - before
    assert calls < 100, f"200 concurrent requests took {calls} backend calls: they were not batched"


def test_spar_s_own_openai_backend_can_use_spar_serve(echo, monkeypatch):
    """`spar run` can take its actor or refiner from `spar serve` through the openai backend."""
    from spar.backends import SamplingParams, make_backend

    server, _ = echo
    monkeypatch.setenv("SPAR_TEST_KEY", "none")
    backend = make_backend("openai", "echo", base_urls=[server.url + "/v1"], api_key_env="SPAR_TEST_KEY")
    try:
        out = backend.generate([[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]],
                               SamplingParams(n=2, max_new_tokens=8))
    finally:
        backend.close()
    assert [[c.text for c in row] for row in out] == [["echo: a", "echo: a #1"], ["echo: b", "echo: b #1"]]


def test_api_key_refused_and_accepted():
    server, _ = serve(echo_backend(), model="echo", api_key="sekret")
    try:
        messages = [{"role": "user", "content": "hi"}]
        with pytest.raises(openai.AuthenticationError) as e:
            server.client(api_key="wrong").chat.completions.create(model="echo", messages=messages)
        assert e.value.code == "invalid_api_key"
        no_key = httpx.post(server.url + "/v1/chat/completions", json={"messages": messages})
        assert no_key.status_code == 401 and "Authorization: Bearer" in no_key.json()["error"]["message"]
        assert httpx.get(server.url + "/v1/models").status_code == 401
        assert httpx.get(server.url + "/health").status_code == 200  # says only that the server is up
        r = server.client(api_key="sekret").chat.completions.create(model="echo", messages=messages)
        assert r.choices[0].message.content == "echo: hi"
    finally:
        server.stop()


def test_limits_and_malformed_requests_get_4xx_in_openai_format():
    server, scheduler = serve(echo_backend(), model="echo", limits=Limits(max_body_bytes=2000, max_tokens=64,
                                                                          max_n=2, max_budget=4))
    try:
        client, messages = server.client(), [{"role": "user", "content": "hi"}]
        for kwargs, param in [({"max_tokens": 65}, "max_tokens"), ({"n": 3}, "n"),
                              ({"extra_body": {"spar": {"strategy": "bfs", "budget": 5}}}, "spar.budget"),
                              ({"extra_body": {"spar": {"strategy": "beam"}}}, "spar.strategy")]:
            with pytest.raises(openai.BadRequestError) as e:
                client.chat.completions.create(model="echo", messages=messages, **kwargs)
            assert e.value.param == param, kwargs
        with pytest.raises(openai.APIStatusError) as e:
            client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x" * 3000}])
        assert e.value.status_code == 413 and e.value.code == "request_too_large"
        url = server.url + "/v1/chat/completions"
        bad = httpx.post(url, content=b'{"messages": [', headers={"content-type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
        missing = httpx.post(url, json={"model": "echo"})
        assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
        chunked = httpx.post(url, content=iter([b" " * 1500, b" " * 1500]))  # no Content-Length: counted as read
        assert chunked.status_code == 413
        assert httpx.get(server.url + "/v1/nothing").json()["error"]["type"] == "invalid_request_error"
        assert scheduler.stats["requests"] == 0, "a refused request reached the model"
    finally:
        server.stop()


def test_bfs_request_refines_like_decode_and_counts_every_token():
    backend = ScriptedBackend(respond=fruit_script)
    server, _ = serve(backend, judge=JudgeConfig(kind="llm", n=1, resample=0), model="fruit")
    try:
        r = server.client().chat.completions.create(
            model="fruit", messages=[{"role": "user", "content": PROMPT}],
            extra_body={"spar": {"strategy": "bfs", "budget": 4, "return_tree": True}})
    finally:
        server.stop()
    assert r.choices[0].message.content == "apple and pear"
    extension = r.model_extra["spar"]
    assert extension["responses"] == 4 and extension["values"] == [1.0]
    tree = extension["trees"][0]
    assert tree["success"] and tree["size"] == 4 and tree["best_value"] == 1.0
    assert r.usage.completion_tokens == script_tokens(backend, fruit_script) == sum(extension["tokens"].values())
    assert extension["tokens"]["judge"] > 0 and extension["tokens"]["refine"] > 0
    # the same answer as spar.decoding's, which the server mirrors
    actor = ScriptedBackend(respond=fruit_script)
    (d,) = decode([Instruction("x", PROMPT)], actor, make_judge("llm", actor, n=1, resample=0), actor,
                  strategy="bfs", budget=4)
    assert (d.text, d.generated) == ("apple and pear", 4)


def test_searches_of_concurrent_requests_share_backend_calls():
    backend = ScriptedBackend(respond=fruit_script)
    server, scheduler = serve(backend, judge=JudgeConfig(kind="verifier"), model="fruit")
    try:
        async def burst():
            async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0) as client:
                return await asyncio.gather(*(client.chat.completions.create(
                    model="fruit", messages=[{"role": "user", "content": PROMPT + f" ({k})"}],
                    extra_body={"spar": {"strategy": strategy, "budget": 4,
                                         "constraints": [{"id": "punctuation:no_comma"}]}})
                    for k, strategy in enumerate(["bfs", "dfs"] * 8)))
        answers = asyncio.run(burst())
    finally:
        server.stop()
    assert [a.choices[0].message.content for a in answers] == ["apple and pear"] * 16
    refine_calls = [chats for chats, params in backend.calls if "Now rewrite" in chats[0][-1]["content"]]
    assert sum(len(c) for c in refine_calls) == 16 and len(refine_calls) < 16


class Slow(ScriptedBackend):
    """A scripted backend that takes `delay` seconds per call, like a model."""

    delay = 0.05

    def generate(self, chats, params):
        time.sleep(self.delay)
        return super().generate(chats, params)


def never_right(chat, i):
    return "<refined>a, b</refined>" if "Now rewrite" in chat[-1]["content"] else "a, b"


def test_a_long_search_holds_back_neither_the_event_loop_nor_short_requests():
    """Short requests join between search steps; /health answers while the model works. Each backend call
    takes a second: a blocked event loop would make /health wait for one, and a server that ran one batch to
    the end before taking the next would make the short request wait for the whole search (~15 s)."""
    backend = Slow(respond=never_right)
    backend.delay = 1.0
    server, scheduler = serve(backend, search=SearchConfig(branch=1, select=1, max_depth=16), model="slow")
    try:
        def long_search():
            with pytest.raises(openai.APIError):  # cut off when the server stops at the end of the test
                server.client().chat.completions.create(model="slow", messages=[{"role": "user", "content": "x"}],
                                                        extra_body={"spar": {"strategy": "dfs", "budget": 16,
                                                                             "constraints": [{"id": NO_COMMA}]}})

        search = threading.Thread(target=long_search, daemon=True)
        search.start()
        with httpx.Client() as http:
            assert http.get(server.url + "/health").status_code == 200  # a warm connection
            while scheduler.stats["forest_steps"] < 1:
                time.sleep(0.02)
            start = time.perf_counter()
            assert http.get(server.url + "/health").status_code == 200
            health = time.perf_counter() - start
        start = time.perf_counter()
        r = server.client().chat.completions.create(model="slow", messages=[{"role": "user", "content": "quick"}])
        quick = time.perf_counter() - start
        assert r.choices[0].message.content == "a, b"
        assert search.is_alive() and scheduler.forest, "the search should still be running"
        assert health < 0.5, f"/health took {health:.2f}s while the model worked: the event loop was blocked"
        assert quick < 6, f"a greedy request waited {quick:.1f}s behind a running search"
    finally:
        server.stop()  # the search's client is cut off after the graceful-shutdown timeout


def test_a_client_that_disconnects_cancels_its_search():
    backend = Slow(respond=never_right)
    server, scheduler = serve(backend, search=SearchConfig(branch=1, select=1, max_depth=16), model="slow")
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.url + "/v1/chat/completions", timeout=0.5, json={
                "messages": [{"role": "user", "content": "no commas"}],
                "spar": {"strategy": "dfs", "budget": 16, "constraints": [{"id": "punctuation:no_comma"}]}})
        deadline = time.time() + 10
        while scheduler.stats["cancelled"] < 1:
            assert time.time() < deadline, "the search went on after its client left"
            time.sleep(0.05)
        calls = len(backend.calls)
        time.sleep(0.5)
        assert len(backend.calls) == calls and not scheduler.forest and not scheduler.jobs
        assert scheduler.stats["done"] == 0
    finally:
        server.stop()


def test_server_stops_cleanly_with_its_worker():
    server, scheduler = serve(echo_backend(), model="echo")
    server.client().chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])
    server.stop()
    assert not scheduler.thread.is_alive()
    with pytest.raises(APIError) as e:
        scheduler.submit(parse_chat_request(body()), lambda value: None)
    assert e.value.status == 503


# ---- the tiny model ----

@pytest.fixture(scope="module")
def tiny():
    from spar.backends.hf import HFBackend

    backend = HFBackend("tiny-random", batch_size=16)
    server, scheduler = serve(backend, search=SearchConfig(max_new_tokens=16, branch=2), model="tiny-random",
                              defaults=Defaults(max_tokens=12))
    yield server
    server.stop()
    backend.close()


def test_tiny_model_completion_stream_and_search(tiny):
    client = tiny.client()
    messages = [{"role": "user", "content": "Say hi without commas."}]
    r = client.chat.completions.create(model="tiny-random", messages=messages, max_tokens=8)
    assert r.choices[0].finish_reason in ("stop", "length") and 0 < r.usage.completion_tokens <= 8
    assert r.usage.prompt_tokens > 0
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="tiny-random", messages=messages, max_tokens=8, stream=True) if c.choices)
    assert streamed == r.choices[0].message.content
    r = client.chat.completions.create(model="tiny-random", messages=messages, n=2, temperature=0.9, seed=1,
                                       max_tokens=8)
    assert len(r.choices) == 2
    r = client.chat.completions.create(model="tiny-random", messages=messages, max_tokens=8, extra_body={
        "spar": {"strategy": "bfs", "budget": 3, "constraints": [{"id": "punctuation:no_comma"}]}})
    extension = r.model_extra["spar"]
    assert 1 <= extension["responses"] <= 3
    assert r.usage.completion_tokens == sum(extension["tokens"].values()) >= extension["tokens"]["answer"] > 0


# ---- the command line ----

@pytest.mark.parametrize("flags, message", [
    (["--host", "0.0.0.0"], "API key"),
    (["--strategy", "beam"], "--strategy beam"),
    (["--port", "70000"], "--port 70000"),
    (["--budget", "20"], "--max-budget"),
])
def test_cli_refuses_bad_settings_in_one_line(flags, message, capsys):
    assert main(["serve", "--backend", "scripted", "--model", "echo", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_refuses_a_busy_port(capsys):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["serve", "--backend", "scripted", "--model", "echo", "--port", str(port)]) == 2
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


def test_cli_serves_and_stops_cleanly_on_sigterm():
    env = {**os.environ, "SPAR_API_KEY": "k"}
    proc = subprocess.Popen([sys.executable, "-m", "spar.cli", "serve", "--backend", "scripted", "--model", "echo",
                             "--port", "0", "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "spar serve: echo at http://127.0.0.1:" in line and "API key required" in line, line
        url = line.split(" at ", 1)[1].split()[0]
        client = openai.OpenAI(base_url=url, api_key="k", max_retries=0)
        r = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "ping"}])
        assert r.choices[0].message.content == "echo: ping"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped (SIGTERM); 1 requests answered" in out and "Traceback" not in err


@pytest.mark.slow
def test_embedded_model_bfs_with_hybrid_judge():
    from spar.backends.hf import HFBackend

    backend = HFBackend("smollm2-135m-instruct", batch_size=8)
    server, _ = serve(backend, judge=JudgeConfig(kind="hybrid", n=3, max_new_tokens=96),
                      search=SearchConfig(max_new_tokens=128), model="smollm2")
    try:
        r = server.client().chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Name three colors. Do not use any commas."}],
            max_tokens=48, extra_body={"spar": {"strategy": "bfs", "budget": 4, "return_tree": True,
                                                "constraints": [{"id": "punctuation:no_comma"}]}})
    finally:
        server.stop()
        backend.close()
    extension = r.model_extra["spar"]
    assert r.choices[0].message.content and 1 <= extension["responses"] <= 4
    assert r.usage.completion_tokens == sum(extension["tokens"].values())
