"""The OpenAI chat-completions wire format: request checking, errors, responses and stream chunks.

    req = parse_chat_request(body_bytes, limits, defaults)   # raises APIError (4xx) naming the field
    completion_body(...), chunk_body(...), error_body(...)

Pure Python (no FastAPI, no torch), so every rule is tested without a
server. Errors follow OpenAI's shape,
`{"error": {"message", "type", "param", "code"}}`, and `param` names the
offending field the way a client wrote it (`messages[2].content`,
`spar.strategy`), so the official clients show it as is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from spar.decoding import STRATEGIES

ROLES = ("system", "developer", "user", "assistant")
MAX_STOP = 4  # as OpenAI's API


class APIError(Exception):
    """An error answered in OpenAI's format; `status` is the HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; beyond it the server answers 4xx instead of working for minutes."""

    max_body_bytes: int = 1_000_000
    max_tokens: int = 2048
    """Upper bound of a request's max_tokens."""
    max_n: int = 8
    max_budget: int = 16
    """Upper bound of spar.budget (generated responses per choice)."""
    max_messages: int = 256


@dataclass(frozen=True)
class Defaults:
    """The server's answers to what a request leaves out."""

    strategy: str = "greedy"
    budget: int = 4
    max_tokens: int = 256


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, str]]
    model: str | None = None
    n: int = 1
    temperature: float | None = None
    """None: the strategy's own (0 for the one answer and the answer bfs/dfs refine, 0.9 for best_of_n samples)."""
    top_p: float | None = None
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    stream: bool = False
    include_usage: bool = False
    strategy: str = "greedy"
    budget: int = 4
    return_tree: bool = False
    constraints: list[dict[str, Any]] = field(default_factory=list)

    @property
    def prompt(self) -> str:
        """The instruction a judge and a refiner see: the last user message."""
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")


# Fields a client may send that this server cannot honour: refused, never silently dropped.
_UNSUPPORTED = {"tools": "tool calls", "functions": "function calls", "tool_choice": "tool calls",
                "function_call": "function calls", "logprobs": "log-probabilities",
                "top_logprobs": "log-probabilities", "audio": "audio output"}


def parse_chat_request(body: bytes, limits: Limits = Limits(), defaults: Defaults = Defaults()) -> ChatRequest:
    """The request in `body`, checked; an APIError naming the field otherwise."""
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise APIError(400, f"the request body is not valid JSON ({e}); send a JSON object with \"messages\"",
                       code="invalid_json") from None
    if not isinstance(obj, dict):
        raise APIError(400, f"the request body must be a JSON object, not {type(obj).__name__}", code="invalid_json")
    for name, what in _UNSUPPORTED.items():
        if obj.get(name) not in (None, False, [], 0):
            raise APIError(400, f"{name}: {what} are not supported by spar serve; leave {name!r} out", param=name,
                           code="unsupported_parameter")
    fmt = obj.get("response_format")
    if fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "text"):
        raise APIError(400, "response_format: only {\"type\": \"text\"} is supported", param="response_format",
                       code="unsupported_parameter")
    extra = obj.get("spar", {})
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise APIError(400, f"spar must be an object such as {{\"strategy\": \"bfs\", \"budget\": 8}}, "
                       f"not {_show(extra)}", param="spar")
    unknown = sorted(set(extra) - {"strategy", "budget", "return_tree", "constraints"})
    if unknown:
        raise APIError(400, f"spar.{unknown[0]}: unknown setting; spar takes strategy, budget, return_tree and "
                       "constraints", param=f"spar.{unknown[0]}")
    strategy = extra.get("strategy", defaults.strategy)
    if strategy not in STRATEGIES:
        raise APIError(400, f"spar.strategy={_show(strategy)}: unknown strategy; choose one of "
                       f"{', '.join(STRATEGIES)}", param="spar.strategy", code="invalid_strategy")
    messages = _messages(obj.get("messages"), limits, strategy)
    model = obj.get("model")
    if model is not None and not isinstance(model, str):
        raise APIError(400, f"model must be a string, not {_show(model)}", param="model")
    max_tokens = obj.get("max_completion_tokens", obj.get("max_tokens"))
    max_param = "max_completion_tokens" if "max_completion_tokens" in obj else "max_tokens"
    max_tokens = _int(max_tokens, max_param, 1, limits.max_tokens, defaults.max_tokens)
    stream_options = obj.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise APIError(400, "stream_options must be an object such as {\"include_usage\": true}",
                       param="stream_options")
    return ChatRequest(
        messages=messages,
        model=model,
        n=_int(obj.get("n"), "n", 1, limits.max_n, 1),
        temperature=_number(obj.get("temperature"), "temperature", 0.0, 2.0, low_open=False),
        top_p=_number(obj.get("top_p"), "top_p", 0.0, 1.0, low_open=True),
        max_tokens=max_tokens,
        stop=_stop(obj.get("stop")),
        seed=_int(obj.get("seed"), "seed", -(2**63), 2**63 - 1, None),
        stream=_bool(obj.get("stream"), "stream", False),
        include_usage=_bool(stream_options.get("include_usage"), "stream_options.include_usage", False),
        strategy=strategy,
        budget=_int(extra.get("budget"), "spar.budget", 1, limits.max_budget, defaults.budget),
        return_tree=_bool(extra.get("return_tree"), "spar.return_tree", False),
        constraints=_constraints(extra.get("constraints")),
    )


def _messages(value: Any, limits: Limits, strategy: str) -> list[dict[str, str]]:
    if value is None:
        raise APIError(400, "messages is missing: send a list such as [{\"role\": \"user\", \"content\": \"Hi\"}]",
                       param="messages", code="missing_required_parameter")
    if not isinstance(value, list) or not value:
        raise APIError(400, f"messages must be a non-empty list of {{\"role\", \"content\"}} objects, not "
                       f"{_show(value)}", param="messages")
    if len(value) > limits.max_messages:
        raise APIError(400, f"messages has {len(value)} entries; this server takes at most {limits.max_messages}",
                       param="messages", code="too_many_messages")
    out = []
    for i, m in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise APIError(400, f"{where} must be an object with \"role\" and \"content\", not {_show(m)}", param=where)
        role = m.get("role")
        if role not in ROLES:
            raise APIError(400, f"{where}.role={_show(role)}: must be one of {', '.join(ROLES)}",
                           param=f"{where}.role")
        out.append({"role": "system" if role == "developer" else role, "content": _content(m.get("content"), where)})
    if not any(m["role"] == "user" for m in out):
        raise APIError(400, "messages has no user message: the instruction to answer is the last user message",
                       param="messages")
    if strategy != "greedy" and out[-1]["role"] != "user":
        raise APIError(400, f"messages must end with a user message for strategy {strategy!r} (the instruction "
                       f"the judge and the refiner work on), not with a {out[-1]['role']!r} message",
                       param=f"messages[{len(out) - 1}].role")
    return out


def _content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: text only
        texts = []
        for j, part in enumerate(value):
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise APIError(400, f"{where}.content[{j}]: only text parts ({{\"type\": \"text\", \"text\": ...}}) "
                               "are supported", param=f"{where}.content[{j}]")
            texts.append(part["text"])
        return "".join(texts)
    raise APIError(400, f"{where}.content must be a string or a list of text parts, not {_show(value)}",
                   param=f"{where}.content")


def _int(value: Any, param: str, low: int, high: int, default):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise APIError(400, f"{param} must be an integer, not {_show(value)}", param=param)
    if not low <= value <= high:
        limit = f"at most {high} on this server" if value > high else f"at least {low}"
        raise APIError(400, f"{param}={value}: must be {limit}", param=param,
                       code="limit_exceeded" if value > high else "invalid_value")
    return value


def _number(value: Any, param: str, low: float, high: float, low_open: bool) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise APIError(400, f"{param} must be a number, not {_show(value)}", param=param)
    if value > high or value < low or (low_open and value == low):
        bound = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise APIError(400, f"{param}={value}: must be in {bound}", param=param, code="invalid_value")
    return float(value)


def _bool(value: Any, param: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise APIError(400, f"{param} must be true or false, not {_show(value)}", param=param)
    return value


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise APIError(400, f"stop must be a non-empty string or a list of them, not {_show(value)}", param="stop")
    if len(stops) > MAX_STOP:
        raise APIError(400, f"stop has {len(stops)} strings; at most {MAX_STOP}", param="stop",
                       code="limit_exceeded")
    return tuple(stops)


def _constraints(value: Any) -> list[dict[str, Any]]:
    """Verifiable constraints of the instruction, for the verifier and hybrid judges: [{id, kwargs}]."""
    if value is None:
        return []
    from spar.constraints import get, verify

    if not isinstance(value, list):
        raise APIError(400, f"spar.constraints must be a list of {{\"id\", \"kwargs\"}} objects, not {_show(value)}",
                       param="spar.constraints")
    out = []
    for i, c in enumerate(value):
        where = f"spar.constraints[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("id"), str) or not isinstance(c.get("kwargs", {}), dict):
            raise APIError(400, f"{where} must be an object {{\"id\": str, \"kwargs\": {{...}}}}, not {_show(c)}",
                           param=where)
        try:
            get(c["id"])
        except KeyError:
            raise APIError(400, f"{where}.id={c['id']!r}: unknown constraint id (an IFEval id such as "
                           "punctuation:no_comma, or one of spar.constraints)", param=f"{where}.id") from None
        out.append({"id": c["id"], "kwargs": c.get("kwargs", {})})
    try:  # bad kwargs surface here, not as a failure in the middle of a batch
        verify("", out)
    except Exception as e:  # noqa: BLE001 - any checker error is the caller's kwargs
        raise APIError(400, f"spar.constraints: a checker refused its kwargs ({type(e).__name__}: {e})",
                       param="spar.constraints") from None
    return out


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, (bytes, bytearray)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- responses ----

def completion_body(request_id: str, created: int, model: str, choices: list[tuple[str, str]],
                    usage: dict[str, int], spar: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion object; `choices` are (text, finish_reason)."""
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "logprobs": None,
                     "finish_reason": finish} for i, (text, finish) in enumerate(choices)],
        "usage": usage,
        "spar": spar,
    }


def chunk_body(request_id: str, created: int, model: str, choices: list[dict[str, Any]],
               usage: dict[str, int] | None = None, **extra: Any) -> dict[str, Any]:
    """A chat.completion.chunk object (one server-sent event)."""
    return {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None, "choices": choices, "usage": usage, **extra}


def delta(index: int, content: str | None = None, role: str | None = None, finish: str | None = None):
    d: dict[str, Any] = {}
    if role:
        d["role"] = role
    if content is not None:
        d["content"] = content
    return {"index": index, "delta": d, "logprobs": None, "finish_reason": finish}


def pieces(text: str) -> list[str]:
    """The text cut into word-sized stream chunks (each word with the whitespace after it); they join to text."""
    return [p for p in re.findall(r"\S*\s*", text) if p]


def sse(obj: Any) -> str:
    return "data: " + (obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)) + "\n\n"
