"""Any OpenAI-compatible chat-completions server: vLLM, SGLang, llama.cpp, a hosted API, `spar serve`.

    backend = OpenAIBackend("meta-llama/Llama-3-8B-Instruct",
                            base_urls=["http://node1:8000/v1", "http://node2:8000/v1"],
                            api_key_env="OPENAI_API_KEY", concurrency=32)

Each chat becomes one POST to `<base_url>/chat/completions` asking for `n`
choices, sent with the official `openai` client (`pip install
'spar-llm[openai]'`). `generate()` is synchronous for its callers; the
requests go out from one event loop on a thread of its own, at most
`concurrency` at a time, spread round-robin over the base URLs, on
connections kept open from one call to the next. Results return in input
order, and a request's seed comes from the chat and the seed asked for,
never from its position in the batch. Callers in several threads may share
one backend (`concurrent`): the search engine grows each tree in its own
thread, so the servers never wait for a level's slowest refinement.

A request that meets a 408, 409, 429 or 5xx, a timeout, a broken connection,
a reply cut short or one that is not a chat completion (malformed JSON, no
choices, more choices than asked) is retried on the next URL after an
exponential backoff with full jitter, up to `max_retries` times; a server's
`Retry-After` is waited out before it is asked again. A base URL that fails
`down_after` times in a row is taken out of rotation for `down_for` seconds
while another one works. Any other 4xx (a bad key, an unknown model, a
prompt over its context) is not retried: it and a server that never answers
are one-line errors naming the URL.

Servers that ignore `n` (llama.cpp gives one choice) are asked again for the
rest, choice j with seed + j, as vLLM seeds it. A chat that ends with an
assistant turn is a prefill, continued through vLLM's and SGLang's
`continue_final_message` (sent in `extra_body`).

Servers the backend starts itself (data-parallel generation on one node):

    backend = OpenAIBackend("meta-llama/Meta-Llama-3-8B-Instruct", replicas=8, gpus_per_replica=1,
                            server_args=["--max-model-len", "8192"])

starts 8 `vllm serve` processes, replica i on GPUs i*g .. i*g+g-1 (its
CUDA_VISIBLE_DEVICES; tensor parallel g inside it), on free local ports,
waits until each answers, and spreads requests over them. `close()` stops
them (the whole process group: vLLM's workers too), which gives the GPUs
back to a training stage; the self-play loop starts them again for the next
checkpoint. Each server's output goes to a log file named in any error.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Sequence

from spar.backends.base import Chat, Completion, SamplingParams
from spar.errors import UserError

# retried besides every 5xx: the same request may succeed later or elsewhere (any other 4xx would be refused again)
RETRY_STATUS = {408, 409, 429}
MAX_RETRY_AFTER = 60.0  # seconds; a server asking for longer (a quota reset) is asked again sooner


class OpenAIBackend:
    concurrent = True
    """`generate` may be called from several threads at once: every call's requests go out from the one event
    loop, within the one `concurrency` bound, and the servers batch them continuously."""
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
        down_after: int = 3,
        down_for: float = 30.0,
        replicas: int = 0,
        gpus_per_replica: int = 1,
        server_args: Sequence[str] = (),
        server_command: Sequence[str] | None = None,
        startup_timeout: float = 1800.0,
    ):
        """`down_after` failures in a row (a 5xx, no answer, a reply that is not a chat completion) take a base
        URL out of rotation for `down_for` seconds, while another one works. `replicas` > 0 starts that many
        servers for `model` (see the module docstring) instead of using `base_urls`; `server_command` replaces
        `vllm serve` (it gets --model, --served-model-name, --host, --port and --tensor-parallel-size, then
        `server_args`)."""
        try:
            import openai  # noqa: F401  (here, not at the top: choosing the backend must not need it)
        except ImportError:
            raise ImportError("the openai backend needs the openai client: pip install 'spar-llm[openai]'") from None
        self.name = model
        self.servers: list[subprocess.Popen] = []
        self.closed = False
        # the clients, their URLs' health and the request slots, made in the event loop by _connect
        self._pid: int | None = None
        self._endpoints: list[_Endpoint] = []
        self._slots: asyncio.Semaphore | None = None
        self._turn = 0
        for key, value, ok, what in (("concurrency", concurrency, concurrency >= 1, ">= 1"),
                                     ("timeout", timeout, timeout > 0, "> 0 seconds"),
                                     ("max_retries", max_retries, max_retries >= 0, ">= 0"),
                                     ("backoff", backoff, backoff >= 0, ">= 0 seconds"),
                                     ("down_after", down_after, down_after >= 1, ">= 1 failures"),
                                     ("down_for", down_for, down_for >= 0, ">= 0 seconds")):
            if not ok:
                raise UserError(f"openai backend: {key}={value!r}: must be {what}")
        if replicas:
            if replicas < 0 or gpus_per_replica < 1:
                raise ValueError(f"openai backend: replicas={replicas}, gpus_per_replica={gpus_per_replica}: "
                                 f"need replicas >= 0 and gpus_per_replica >= 1")
            base_urls = self._start(replicas, gpus_per_replica, list(server_args), server_command, startup_timeout)
        self.base_urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not self.base_urls:
            raise ValueError("openai backend: give at least one base URL, e.g. http://127.0.0.1:8000/v1")
        bad = [u for u in self.base_urls if not str(u).startswith(("http://", "https://"))]
        if bad:
            raise UserError(f"openai backend: base URL {bad[0]!r} must start with http:// or https://, "
                            f"e.g. http://127.0.0.1:8000/v1")
        self.api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        self.concurrency, self.timeout = concurrency, timeout
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.down_after, self.down_for = down_after, down_for

    def close(self) -> None:
        """Stop the servers this backend started (servers at given base_urls belong to whoever started them, and
        are left running) and close its connections. Safe to call twice; the backend cannot generate afterwards."""
        self.closed = True
        endpoints, self._endpoints = self._endpoints, []
        if endpoints and self._pid == os.getpid():
            try:
                asyncio.run_coroutine_threadsafe(_close_clients(endpoints), _event_loop()).result(timeout=10)
            except Exception:  # noqa: BLE001  (a connection that will not close cleanly is dropped at exit anyway)
                pass
        servers, self.servers = self.servers, []
        for proc in servers:
            _signal_group(proc, signal.SIGTERM)
        # wait for the workers too, not only the server: one still exiting would hold its GPU as training starts
        deadline = time.monotonic() + 60
        while any(_group_alive(p.pid) for p in servers) and time.monotonic() < deadline:
            for proc in servers:
                proc.poll()  # reap the servers themselves
            time.sleep(0.1)
        for proc in servers:
            if _group_alive(proc.pid):
                _signal_group(proc, signal.SIGKILL)
            proc.wait()
        if servers:
            atexit.unregister(self.close)

    def __enter__(self) -> "OpenAIBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self, replicas: int, gpus: int, args: list[str], command: Sequence[str] | None,
               startup_timeout: float) -> list[str]:
        from spar.models import model_dir

        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        devices = visible.split(",") if visible else [str(i) for i in range(replicas * gpus)]
        if len(devices) < replicas * gpus:
            raise ValueError(f"openai backend: replicas={replicas} x gpus_per_replica={gpus} needs {replicas * gpus} "
                             f"GPUs, CUDA_VISIBLE_DEVICES={visible} lists {len(devices)}")
        command = list(command or [sys.executable, "-m", "vllm.entrypoints.openai.api_server"])
        urls = []
        atexit.register(self.close)  # an exception or exit before close() must not leave servers holding GPUs
        for i in range(replicas):
            port = _free_port()
            log = tempfile.NamedTemporaryFile("wb", prefix=f"spar-server-{i}-", suffix=".log", delete=False)
            cmd = [*command, "--model", str(model_dir(self.name)), "--served-model-name", self.name,
                   "--host", "127.0.0.1", "--port", str(port), "--tensor-parallel-size", str(gpus), *args]
            env = dict(os.environ, CUDA_VISIBLE_DEVICES=",".join(devices[i * gpus:(i + 1) * gpus]))
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            proc.log_path = log.name  # type: ignore[attr-defined]
            log.close()
            self.servers.append(proc)
            urls.append(f"http://127.0.0.1:{port}/v1")
        try:
            for proc, url in zip(self.servers, urls):
                _wait_ready(proc, url, startup_timeout)
        except BaseException:
            self.close()
            raise
        return urls

    def generate(self, chats: Sequence[Chat], params: SamplingParams) -> list[list[Completion]]:
        if self.closed:
            raise RuntimeError(f"the openai backend for {self.name} was closed; build a new one to generate again")
        if not chats:
            return []
        future = asyncio.run_coroutine_threadsafe(self._generate(list(chats), params), _event_loop())
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C here: stop sending the batch's requests
            raise

    # ---- in the event loop ----------------------------------------------------------------------

    def _connect(self) -> None:
        """One client per base URL, made once per process (a forked child needs its own connections)."""
        if self._pid == os.getpid():
            return
        import openai

        # the client insists on a key; with none, a placeholder it never sends (the header is omitted per request)
        self._endpoints = [_Endpoint(url, openai.AsyncOpenAI(base_url=url, api_key=self.api_key or "none",
                                                             max_retries=0, timeout=self.timeout))
                           for url in self.base_urls]
        self._slots = asyncio.Semaphore(self.concurrency)
        self._pid = os.getpid()

    async def _generate(self, chats: list[Chat], params: SamplingParams) -> list[list[Completion]]:
        self._connect()
        tasks = [asyncio.ensure_future(self._chat(chat, params, i)) for i, chat in enumerate(chats)]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:  # one request refused: the batch fails, so stop the others
                task.cancel()

    async def _chat(self, chat: Chat, params: SamplingParams, index: int) -> list[Completion]:
        body: dict[str, Any] = {"model": self.name, "messages": chat, "temperature": params.temperature,
                                "top_p": params.top_p, "max_tokens": params.max_new_tokens}
        if params.stop:
            body["stop"] = list(params.stop)
        extra = None
        if chat and chat[-1]["role"] == "assistant":  # a prefill: vLLM's and SGLang's extension
            extra = {"add_generation_prompt": False, "continue_final_message": True}
        if params.repetition_penalty != 1.0:  # vLLM's and SGLang's extension too; OpenAI's API has no such field
            extra = dict(extra or {}, repetition_penalty=params.repetition_penalty)
        seed = request_seed(chat, params) if params.seed is not None else None
        return await self._choices(body, extra, seed, 0, params.n, index)

    async def _choices(self, body: dict, extra: dict | None, seed: int | None, first: int, count: int,
                       index: int) -> list[Completion]:
        """Choices first .. first+count-1 of a chat. A server that gives k < count of them (it ignores n) is
        asked for the rest in requests of k, in parallel, the one starting at choice j seeded seed + j: the
        seed vLLM gives choice j of a single request, so the samples are the same however they were asked for."""
        asked = dict(body, n=count)
        if seed is not None:
            asked["seed"] = seed + first
        got = await self._ask(asked, extra, index)
        if len(got) == count:
            return got
        k, end = len(got), first + count
        rest = await asyncio.gather(*(self._choices(body, extra, seed, j, min(k, end - j), index)
                                      for j in range(first + k, end, k)))
        return got + [c for part in rest for c in part]

    async def _ask(self, body: dict, extra: dict | None, index: int) -> list[Completion]:
        """One request, retried (see the module docstring); between 1 and body["n"] choices, or a ServerError."""
        import openai

        headers = None if self.api_key else {"Authorization": openai.Omit()}
        last_error, tried, protocol = "", [], False
        assert self._slots is not None
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (attempt - 1))))
            async with self._slots:
                # the URL is chosen once the request can go, so it knows of the failures of those sent before it
                endpoint = self._pick()
                if endpoint.url not in tried:
                    tried.append(endpoint.url)
                wait = endpoint.retry_at - time.monotonic()
                if wait > 0:  # it asked for a pause (Retry-After), as did every other URL: every request waits
                    await asyncio.sleep(wait)
                try:
                    raw = await endpoint.client.chat.completions.with_raw_response.create(
                        **body, extra_body=extra, extra_headers=headers)
                    out = _parse(raw.content, body["n"], endpoint.url)
                except openai.APIStatusError as e:
                    status = e.status_code
                    if status < 500 and status not in RETRY_STATUS:
                        # the server refused this request as asked (bad key, unknown model, prompt over its context)
                        detail = " ".join(e.response.text[:300].split())
                        raise ServerError(f"{endpoint.url} answered HTTP {status} to request {index} for model "
                                          f"{self.name!r}: {detail or e.response.reason_phrase}") from None
                    last_error, protocol = f"HTTP {status}", False
                    pause = _retry_after(e.response.headers)
                    if pause is not None:
                        endpoint.retry_at = time.monotonic() + min(max(pause, 0.0), MAX_RETRY_AFTER)
                    if status >= 500:
                        self._failed(endpoint)
                except openai.APIConnectionError as e:
                    # refused or dropped connections, a reply cut short (fewer bytes than its Content-Length),
                    # timeouts
                    cause = e.__cause__ or e
                    last_error = (f"no reply within timeout={self.timeout:g}s"
                                  if isinstance(e, openai.APITimeoutError)
                                  else f"{type(cause).__name__}: {cause}".rstrip(": "))
                    protocol = False
                    self._failed(endpoint)
                except ProtocolError as e:
                    last_error, protocol = str(e), True
                    self._failed(endpoint)
                else:
                    endpoint.failures = 0
                    return out
        hint = ("is it an OpenAI-compatible chat-completions server?" if protocol else
                "start the server or fix the base URL (--base-url, options.base_urls), or raise timeout/max_retries "
                "for a slow one")
        raise ServerError(f"no answer from {', '.join(sorted(tried))}: request {index} failed {self.max_retries + 1} "
                          f"times (last error: {last_error}); {hint}")

    def _pick(self) -> "_Endpoint":
        """The next base URL in turn, passing over one out of rotation while another is in, and one that asked
        for a pause (Retry-After) while another is free. With every URL out, they all take turns again."""
        now, ends = time.monotonic(), self._endpoints
        start, self._turn = self._turn, (self._turn + 1) % len(ends)
        return min(ends[start:] + ends[:start], key=lambda e: (e.down_until > now, max(e.retry_at, now)))

    def _failed(self, endpoint: "_Endpoint") -> None:
        endpoint.failures += 1
        if endpoint.failures >= self.down_after:  # and again after each failure once it is back, until one works
            endpoint.down_until = time.monotonic() + self.down_for


class _Endpoint:
    """One base URL: its client, its failures in a row, and until when it is out of rotation or asked to wait."""

    def __init__(self, base_url: str, client: Any):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.client = client
        self.failures = 0
        self.down_until = 0.0  # time.monotonic()
        self.retry_at = 0.0


class ServerError(UserError, RuntimeError):
    """A server that does not answer (down, wrong URL) or refuses a request (HTTP 4xx): said in one line, naming
    the URL, never a traceback. (A RuntimeError too, as callers caught before it was a user error.)"""


class ProtocolError(Exception):
    """A reply that is not a chat completion (malformed JSON, no choices, more than asked); names the URL."""


def request_seed(chat: Chat, params: SamplingParams) -> int:
    """The seed of one request, from the run's seed and the chat itself, not its position in the batch, so a chat
    gets the same samples however the work is batched. vLLM seeds choice j with seed + j; seeds are multiples of
    n apart, so two different chats share a sample's seed only if their hashes collide."""
    digest = zlib.crc32(json.dumps(chat, sort_keys=True, ensure_ascii=False).encode())
    return params.seed + params.n * (digest % (2**31 // params.n))


def _parse(content: bytes, asked: int, url: str) -> list[Completion]:
    """The choices of a reply, by index: between 1 and `asked` of them (fewer from a server that ignores n)."""
    try:
        payload = json.loads(content)
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise ProtocolError(f"{url} replied with malformed JSON ({e}): {content[:80]!r}") from None
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not choices or not isinstance(choices, list):
        raise ProtocolError(f"{url} replied without choices: {json.dumps(payload)[:120]}")
    if len(choices) > asked:
        raise ProtocolError(f"{url} returned {len(choices)} choices, asked for {asked}")
    try:
        usage = payload.get("usage") or {}
        return [
            Completion(
                text=c["message"]["content"] or "",
                prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0) // len(choices),
                finish_reason="length" if c.get("finish_reason") == "length" else "stop",
            )
            for c in sorted(choices, key=lambda c: c.get("index", 0))
        ]
    except (KeyError, TypeError, AttributeError) as e:
        raise ProtocolError(f"{url} gave a reply without choices[].message.content ({e!r})") from None


def _retry_after(headers: Any) -> float | None:
    """The pause a server asked for, in seconds: Retry-After (seconds or an HTTP date), or retry-after-ms."""
    try:
        if headers.get("retry-after-ms") is not None:
            return float(headers["retry-after-ms"]) / 1000
    except ValueError:
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


_LOOP: tuple[int, asyncio.AbstractEventLoop] | None = None
_LOOP_LOCK = threading.Lock()


def _event_loop() -> asyncio.AbstractEventLoop:
    """The event loop the openai backends of this process send their requests from, running on a thread of its
    own: generate() stays synchronous whatever thread calls it (one inside a running event loop too), and
    connections stay open from one call to the next."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None or _LOOP[0] != os.getpid():  # a forked child inherits the loop but not its thread
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="spar-openai-backend", daemon=True).start()
            _LOOP = (os.getpid(), loop)
        return _LOOP[1]


async def _close_clients(endpoints: list[_Endpoint]) -> None:
    for endpoint in endpoints:
        await endpoint.client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Signal the server and the workers it started (its own session, so its own process group)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group is still running (zombies, dead but not yet reaped, do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _wait_ready(proc: subprocess.Popen, url: str, timeout: float) -> None:
    """Poll `<url>/models` until the server answers; a server that exits or never answers is an error naming
    its log (loading an 8B model takes a minute or two, longer when it is first downloaded)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server {' '.join(map(str, proc.args[:4]))} ... for {url} exited with code "
                               f"{proc.returncode} while starting; its output: {proc.log_path}\n{_tail(proc.log_path)}")
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/models", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server for {url} did not answer within startup_timeout={timeout:g}s; "
                               f"its output: {proc.log_path}\n{_tail(proc.log_path)}")
        time.sleep(0.5)


def _tail(path: str, lines: int = 20) -> str:
    try:
        return "\n".join(open(path, errors="replace").read().splitlines()[-lines:])
    except OSError:
        return ""
