"""`spar serve`: an OpenAI-compatible server whose answers come from tree-search decoding.

    spar serve --model smollm2-135m-instruct --judge hybrid --port 8000
    SPAR_API_KEY=secret spar serve --model tiny-random --strategy bfs --budget 8 --host 0.0.0.0

Listens on 127.0.0.1 unless --host says otherwise; a host beyond loopback
needs an API key (--api-key or $SPAR_API_KEY), or --allow-no-key to say
you mean it. Clients choose the decoding per request with the extension
field `"spar": {"strategy": "bfs", "budget": 8, "return_tree": true}`;
--strategy and --budget are the defaults. `--backend scripted` answers
every chat with "echo: <its last message>", for plumbing tests. Ctrl-C or
SIGTERM stops taking requests, lets the running ones finish (up to
--shutdown-timeout seconds) and exits with status 0.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket

from spar.config import JudgeConfig, ModelConfig, SearchConfig, add_flags, flags_config
from spar.decoding import STRATEGIES
from spar.errors import UserError

LOOPBACK_NAMES = ("localhost",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_flags(p, ModelConfig, "actor.", rename={"name": "--model"}, exclude=("options",))
    p.add_argument("--refiner", default=None, help="refiner/judge model (default: --model, one shared copy)")
    p.add_argument("--served-model-name", default=None, help="the `model` clients send (default: --model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (0 = any free port; the address is printed)")
    p.add_argument("--api-key", default=None,
                   help="require 'Authorization: Bearer <key>' (default: $SPAR_API_KEY; none on loopback)")
    p.add_argument("--allow-no-key", action="store_true", help="listen beyond loopback without an API key")
    p.add_argument("--strategy", default="greedy", help=f"default decoding: {', '.join(STRATEGIES)}")
    p.add_argument("--budget", type=int, default=4, help="default generated responses per answer (searches)")
    p.add_argument("--max-tokens", type=int, default=256, help="default max_tokens of a request")
    p.add_argument("--max-tokens-limit", type=int, default=2048, help="largest max_tokens a request may ask for")
    p.add_argument("--max-n", type=int, default=8, help="largest n a request may ask for")
    p.add_argument("--max-budget", type=int, default=16, help="largest spar.budget a request may ask for")
    p.add_argument("--max-body-bytes", type=int, default=1_000_000, help="largest request body")
    p.add_argument("--max-queue", type=int, default=1024, help="requests queued or running before 503s")
    p.add_argument("--batch-window-ms", type=float, default=5.0,
                   help="how long an idle server waits after a request for others to batch with it")
    p.add_argument("--seed", type=int, default=0, help="seed of the judge and of searches whose request has none")
    p.add_argument("--shutdown-timeout", type=float, default=30.0,
                   help="seconds running requests get to finish on shutdown")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    add_flags(p, JudgeConfig, "judge.", rename={"kind": "--judge"}, prefix="--judge-")
    add_flags(p, SearchConfig, "search.", prefix="--search-", exclude=("strategy", "max_refinements"))


def check(args: argparse.Namespace) -> dict:
    """Every flag checked before a model loads; returns the settings."""
    from spar.serve.protocol import Defaults, Limits

    model, judge, search = (flags_config(args, ModelConfig, "actor."), flags_config(args, JudgeConfig, "judge."),
                            flags_config(args, SearchConfig, "search."))
    if args.strategy not in STRATEGIES:
        raise UserError(f"--strategy {args.strategy}: unknown; choose one of {', '.join(STRATEGIES)}")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: must be from 0 to 65535 (0 = any free port)")
    for flag in ("max_tokens", "max_tokens_limit", "max_n", "max_budget", "max_body_bytes", "max_queue", "budget"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} {getattr(args, flag)}: must be at least 1")
    if args.budget > args.max_budget:
        raise UserError(f"--budget {args.budget} is above --max-budget {args.max_budget}; raise --max-budget")
    if args.max_tokens > args.max_tokens_limit:
        raise UserError(f"--max-tokens {args.max_tokens} is above --max-tokens-limit {args.max_tokens_limit}")
    if args.batch_window_ms < 0 or args.shutdown_timeout < 0:
        raise UserError("--batch-window-ms and --shutdown-timeout must be >= 0")
    api_key = args.api_key or os.environ.get("SPAR_API_KEY") or None
    if not api_key and not _loopback(args.host) and not args.allow_no_key:
        raise UserError(f"--host {args.host} lets other machines in, and no API key is set: pass --api-key or set "
                        "SPAR_API_KEY (clients then send 'Authorization: Bearer <key>'), or --allow-no-key")
    limits = Limits(max_body_bytes=args.max_body_bytes, max_tokens=args.max_tokens_limit, max_n=args.max_n,
                    max_budget=args.max_budget)
    defaults = Defaults(strategy=args.strategy, budget=args.budget, max_tokens=args.max_tokens)
    return dict(model=model, judge=judge, search=search, api_key=api_key, limits=limits, defaults=defaults)


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_backends(model: ModelConfig, refiner: str | None):
    """(actor, refiner) backends; the refiner is the actor when it names the same model."""
    if model.backend == "scripted":
        from spar.backends.scripted import ScriptedBackend

        echo = ScriptedBackend(name=model.name, respond=lambda chat, i: "echo: " + chat[-1]["content"])
        return echo, echo
    from spar.commands.judge import open_backend

    actor = open_backend(model)
    if refiner and refiner != model.name:
        return actor, open_backend(ModelConfig(name=refiner, backend=model.backend, batch_size=model.batch_size,
                                               options=model.options))
    return actor, actor


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from spar.serve.app import ServeSettings, create_app
    except ImportError as e:
        raise UserError(f"spar serve needs FastAPI and uvicorn ({e}); install them with: pip install 'spar-llm[serve]'")
    from spar.serve.scheduler import Scheduler

    s = check(args)
    sock = _bind(args.host, args.port)  # a busy port fails now, not after the model has loaded
    actor, refiner = open_backends(s["model"], args.refiner)
    scheduler = Scheduler(actor, refiner, s["judge"], s["search"], window=args.batch_window_ms / 1000, seed=args.seed)
    name = args.served_model_name or s["model"].name
    app = create_app(scheduler, ServeSettings(model=name, api_key=s["api_key"], limits=s["limits"],
                                              defaults=s["defaults"], max_queue=args.max_queue))
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, access_log=args.log_level == "debug",
                                           timeout_graceful_shutdown=args.shutdown_timeout))
    caught: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):  # uvicorn re-raises the signal it stopped on: take it here
        signal.signal(sig, lambda number, frame: caught.append(number))

    import asyncio

    async def serve() -> None:
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            host, port = sock.getsockname()[:2]
            url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/v1"
            print(f"spar serve: {name} at {url} (default strategy {args.strategy}, budget {args.budget}; "
                  f"{'API key required' if s['api_key'] else 'no API key'})", flush=True)
        await task

    try:
        asyncio.run(serve())
    finally:
        for b in {id(actor): actor, id(refiner): refiner}.values():
            b.close()
    why = {signal.SIGINT: "interrupted", signal.SIGTERM: "SIGTERM"}.get(caught[0], "signal") if caught else "done"
    try:
        print(f"spar serve: stopped ({why}); {scheduler.stats['done']} requests answered", flush=True)
    except OSError:  # whoever read our output has gone (a closed pipe): nothing left to tell
        pass
    return 0


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port (0 = any free "
                        "port) or --host") from None
