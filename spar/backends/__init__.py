"""Generation backends behind one protocol (see base.py).

`make_backend("hf", "smollm2-135m-instruct")` builds one; heavy modules
(transformers, vllm, http clients) are imported only when their backend is
chosen, so `import spar` stays light.
"""

from __future__ import annotations

from spar.backends.base import Backend, Chat, Completion, SamplingParams

__all__ = ["Backend", "Chat", "Completion", "SamplingParams", "make_backend", "BACKENDS"]

BACKENDS = ("hf", "vllm", "openai", "scripted")


def make_backend(kind: str, model: str, **options) -> Backend:
    """Build the backend `kind` for `model`; `options` go to its constructor."""
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
