"""The HTTP face: FastAPI routes over the scheduler.

    app = create_app(scheduler, ServeSettings(model="tiny-random", api_key="..."))
    uvicorn.run(app, host="127.0.0.1", port=8000)

Routes: `POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/{id}`,
`GET /health` (no key needed: it says only that the server is up). With
an API key set, every `/v1` route wants `Authorization: Bearer <key>`.

The event loop never runs the model: a request is checked (size, JSON,
fields, limits), handed to the scheduler's worker thread, and its handler
waits on a future while watching the connection; a client that goes away
cancels its job, so the worker drops its work at the next step.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from spar.serve.protocol import (APIError, Defaults, Limits, chunk_body, completion_body, delta, error_body,
                                 parse_chat_request, pieces, sse)
from spar.serve.scheduler import Job, Result, Scheduler


@dataclass
class ServeSettings:
    model: str
    """The name clients send as `model` (and /v1/models lists)."""
    api_key: str | None = None
    limits: Limits = field(default_factory=Limits)
    defaults: Defaults = field(default_factory=Defaults)
    max_queue: int = 1024
    """Requests queued or in progress beyond which new ones get 503 (and Retry-After)."""


def create_app(scheduler: Scheduler, settings: ServeSettings) -> FastAPI:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if scheduler.thread is None:
            scheduler.start()
        yield
        # uvicorn has stopped taking connections and waited for the open ones: end the worker
        await asyncio.get_running_loop().run_in_executor(None, scheduler.stop)

    app = FastAPI(title="spar serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.scheduler, app.state.settings = scheduler, settings
    created = int(time.time())

    @app.exception_handler(APIError)
    async def api_error(request: Request, e: APIError):
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        message = {404: f"no route {request.method} {request.url.path}; this server has POST /v1/chat/completions, "
                        "GET /v1/models and GET /health",
                   405: f"method {request.method} is not allowed on {request.url.path}"}.get(e.status_code,
                                                                                             str(e.detail))
        return JSONResponse(error_body(message, "invalid_request_error", None, None), status_code=e.status_code)

    @app.exception_handler(Exception)
    async def server_error(request: Request, e: Exception):
        return JSONResponse(error_body(f"internal error in spar serve ({type(e).__name__}: {e})", "server_error"),
                            status_code=500)

    def authorize(request: Request) -> None:
        if not settings.api_key:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise APIError(401, "no API key: send the header 'Authorization: Bearer <key>'",
                           code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.api_key.encode()):
            raise APIError(401, "incorrect API key", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})

    def model_card() -> dict[str, Any]:
        return {"id": settings.model, "object": "model", "created": created, "owned_by": "spar"}

    @app.get("/health")
    async def health():
        alive = scheduler.thread is not None and scheduler.thread.is_alive()
        return JSONResponse({"status": "ok" if alive else "down"}, status_code=200 if alive else 503)

    @app.get("/v1/models")
    async def models(request: Request):
        authorize(request)
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str, request: Request):
        authorize(request)
        if model_id != settings.model:
            raise APIError(404, f"model {model_id!r} is not served here; this server serves {settings.model!r}",
                           param="model", code="model_not_found")
        return model_card()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        authorize(request)
        req = parse_chat_request(await _read_body(request, settings.limits.max_body_bytes), settings.limits,
                                 settings.defaults)
        if req.model is not None and req.model != settings.model:
            raise APIError(404, f"model {req.model!r} is not served here; this server serves {settings.model!r}",
                           param="model", code="model_not_found")
        if scheduler.pending() >= settings.max_queue:
            raise APIError(503, f"the server is busy ({scheduler.pending()} requests queued or running); retry soon",
                           type="server_error", code="server_busy", headers={"Retry-After": "1"})
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()

        def deliver(value) -> None:  # called by the worker thread
            loop.call_soon_threadsafe(_settle, future, value)

        job = scheduler.submit(req, deliver)
        request_id = "chatcmpl-" + uuid.uuid4().hex
        if req.stream:
            return StreamingResponse(_stream(request, job, future, request_id, settings.model),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        result = await _wait(request, job, future)
        if result is None:  # the client left; nobody reads this
            return JSONResponse(error_body("client disconnected", "invalid_request_error"), status_code=499)
        return completion_body(request_id, int(time.time()), settings.model,
                               [(c.text, c.finish) for c in result.choices], _usage(result), _extension(req, result))

    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes (checked on the header first, then while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"the request body is {declared} bytes; this server takes at most {limit}",
                       code="request_too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise APIError(413, f"the request body is over {limit} bytes, the most this server takes",
                           code="request_too_large")
    return bytes(body)


def _settle(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)


async def _wait(request: Request, job: Job, future: asyncio.Future) -> Result | None:
    """The job's result; None (and the job cancelled) if the client disconnects first."""
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({future, gone}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the server is shutting down or the connection task was cancelled
        job.cancel()
        raise
    finally:
        gone.cancel()
    if not future.done():
        job.cancel()
        return None
    value = future.result()
    if isinstance(value, BaseException):
        raise value
    return value


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the body is read, so the next ASGI message is the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _stream(request: Request, job: Job, future: asyncio.Future, request_id: str, model: str):
    """Server-sent events in OpenAI's chunk format: the role at once, the final answers when the search ends."""
    created = int(time.time())
    req = job.request
    try:
        yield sse(chunk_body(request_id, created, model, [delta(i, "", role="assistant") for i in range(req.n)]))
        try:
            result = await _wait(request, job, future)
        except APIError as e:  # the status line is sent already: the error goes in the stream
            yield sse(e.body())
            return
        if result is None:
            return
        for i, c in enumerate(result.choices):
            for piece in pieces(c.text):
                yield sse(chunk_body(request_id, created, model, [delta(i, piece)]))
        yield sse(chunk_body(request_id, created, model, [delta(i, finish=c.finish) for i, c in
                                                           enumerate(result.choices)],
                             **({} if req.include_usage else {"spar": _extension(req, result)})))
        if req.include_usage:
            yield sse(chunk_body(request_id, created, model, [], usage=_usage(result), spar=_extension(req, result)))
        yield sse("[DONE]")
    finally:
        job.cancel()  # a no-op once delivered; stops the work if the client left mid-stream


def _usage(result: Result) -> dict[str, int]:
    generated = sum(result.tokens.values())
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": generated,
            "total_tokens": result.prompt_tokens + generated}


def _extension(req, result: Result) -> dict[str, Any]:
    """The `spar` field of a response: how the answer was found (trees only when asked)."""
    out: dict[str, Any] = {"strategy": req.strategy, "budget": req.budget if req.strategy != "greedy" else 1,
                           "responses": result.responses, "tokens": result.tokens,
                           "values": [c.value for c in result.choices], "seconds": round(result.seconds, 4)}
    if req.return_tree:
        out["trees"] = [_tree_summary(c.tree) for c in result.choices]
    return out


def _tree_summary(tree) -> dict[str, Any] | None:
    if tree is None:  # the first answer was judged right (or the strategy grows no tree)
        return None
    best = next(n for n in tree.nodes if n["id"] == tree.best)
    return {"nodes": [{k: n[k] for k in ("id", "parent", "depth", "value", "label", "failed", "truncated",
                                         "response", "critique")} for n in tree.nodes],
            "size": len(tree.nodes), "best": tree.best, "best_value": best["value"], "success": tree.success,
            "calls": tree.calls}
