"""Any OpenAI-compatible chat-completions server: vLLM, SGLang, llama.cpp, a hosted API, `spar serve`.

    backend = OpenAIBackend("meta-llama/Llama-3-8B-Instruct",
                            base_urls=["http://node1:8000/v1", "http://node2:8000/v1"],
                            api_key_env="OPENAI_API_KEY", concurrency=32)

Each chat becomes one POST to `<base_url>/chat/completions` asking for `n`
choices. Requests go out from a bounded thread pool, spread round-robin
over the base URLs; a request that meets 429, a 5xx, a timeout or a broken
connection, or a reply cut short (fewer bytes than its Content-Length) is
retried on the next URL after an exponential backoff with full jitter, up
to `max_retries` times. Results return in input order. A server that never
answers, or refuses a request (HTTP 4xx: a bad key, an unknown model, a
prompt over its context), is a one-line error naming the URL. A request's
seed comes from the chat and the seed asked for, never from its position
in the batch. Only the standard library is used.

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

import atexit
import http.client
import itertools
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from spar.backends.base import Chat, Completion, SamplingParams
from spar.errors import UserError

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
        replicas: int = 0,
        gpus_per_replica: int = 1,
        server_args: Sequence[str] = (),
        server_command: Sequence[str] | None = None,
        startup_timeout: float = 1800.0,
    ):
        """`replicas` > 0 starts that many servers for `model` (see the module docstring) instead of using
        `base_urls`; `server_command` replaces `vllm serve` (it gets --model,
        --served-model-name, --host, --port and --tensor-parallel-size, then `server_args`)."""
        self.name = model
        self.servers: list[subprocess.Popen] = []
        self.closed = False
        if replicas:
            if replicas < 0 or gpus_per_replica < 1:
                raise ValueError(f"openai backend: replicas={replicas}, gpus_per_replica={gpus_per_replica}: "
                                 f"need replicas >= 0 and gpus_per_replica >= 1")
            base_urls = self._start(replicas, gpus_per_replica, list(server_args), server_command, startup_timeout)
        self.base_urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not self.base_urls:
            raise ValueError("openai backend: give at least one base URL, e.g. http://127.0.0.1:8000/v1")
        for key, value, ok, what in (("concurrency", concurrency, concurrency >= 1, ">= 1"),
                                     ("timeout", timeout, timeout > 0, "> 0 seconds"),
                                     ("max_retries", max_retries, max_retries >= 0, ">= 0"),
                                     ("backoff", backoff, backoff >= 0, ">= 0 seconds")):
            if not ok:
                raise UserError(f"openai backend: {key}={value!r}: must be {what}")
        bad = [u for u in self.base_urls if not str(u).startswith(("http://", "https://"))]
        if bad:
            raise UserError(f"openai backend: base URL {bad[0]!r} must start with http:// or https://, "
                            f"e.g. http://127.0.0.1:8000/v1")
        self.api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        self.concurrency, self.timeout = concurrency, timeout
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self._next_url = itertools.cycle(range(len(self.base_urls)))
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop the servers this backend started (servers at given base_urls belong to whoever started them, and
        are left running). Safe to call twice; the backend cannot generate afterwards."""
        self.closed = True
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
            body["seed"] = request_seed(chat, params)
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last_error, tried = "", set()
        for attempt in range(self.max_retries + 1):
            with self._lock:
                url = self.base_urls[next(self._next_url)].rstrip("/") + "/chat/completions"
            tried.add(url)
            try:
                req = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return _parse(json.loads(resp.read()), params.n, url)
            except urllib.error.HTTPError as e:
                if e.code not in RETRY_STATUS:
                    detail = " ".join(e.read()[:300].decode(errors="replace").split())
                    # the server refused this request as asked (bad key, unknown model, prompt over its context)
                    raise ServerError(f"{url} answered HTTP {e.code} to request {index} for model {self.name!r}: "
                                      f"{detail or e.reason}") from None
                last_error = f"HTTP {e.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, json.JSONDecodeError,
                    http.client.HTTPException) as e:
                # HTTPException: a reply cut short (IncompleteRead: fewer bytes than its Content-Length), a bad
                # status line or a dropped connection; the next attempt asks again
                last_error = f"{type(e).__name__}: {getattr(e, 'reason', None) or e}"
            if attempt < self.max_retries:
                time.sleep(random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt)))
        raise ServerError(f"no answer from {', '.join(sorted(tried))}: request {index} failed {self.max_retries + 1} "
                          f"times (last error: {last_error}); start the server or fix the base URL (--base-url, "
                          f"options.base_urls), or raise timeout/max_retries for a slow one")


class ServerError(UserError, RuntimeError):
    """A server that does not answer (down, wrong URL) or refuses a request (HTTP 4xx): said in one line, naming
    the URL, never a traceback. (A RuntimeError too, as callers caught before it was a user error.)"""


def request_seed(chat: Chat, params: SamplingParams) -> int:
    """The seed of one request, from the run's seed and the chat itself, not its position in the batch, so a chat
    gets the same samples however the work is batched. vLLM seeds choice j with seed + j; seeds are multiples of
    n apart, so two different chats share a sample's seed only if their hashes collide."""
    digest = zlib.crc32(json.dumps(chat, sort_keys=True, ensure_ascii=False).encode())
    return params.seed + params.n * (digest % (2**31 // params.n))


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
