"""vLLM's offline engine, for GPUs: tensor parallelism and prefix caching.

    backend = VLLMBackend("meta-llama/Llama-3-8B-Instruct", tensor_parallel_size=8)

vllm is imported here only, when this backend is chosen (`pip install spar-llm[vllm]`).
Prefix caching pays off in SPaR: the n judge votes and the refinements of
one node share their whole prompt.
"""

from __future__ import annotations

from typing import Sequence

from spar.backends.base import Chat, Completion, SamplingParams


class VLLMBackend:
    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        enable_prefix_caching: bool = True,
        max_model_len: int | None = None,
        dtype: str = "auto",
    ):
        try:
            import vllm
        except ImportError:
            raise ImportError("the vllm backend needs vLLM on a GPU machine: pip install 'spar-llm[vllm]'") from None
        from spar.models import model_dir

        self.name = model
        self._vllm = vllm
        self.llm = vllm.LLM(
            model=str(model_dir(model)),
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            enable_prefix_caching=enable_prefix_caching,
            max_model_len=max_model_len,
            dtype=dtype,
        )

    def generate(self, chats: Sequence[Chat], params: SamplingParams) -> list[list[Completion]]:
        sampling = self._vllm.SamplingParams(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p if params.temperature > 0 else 1.0,
            max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None,
            seed=params.seed,
        )
        prefill = bool(chats) and chats[0][-1]["role"] == "assistant"
        if any((c[-1]["role"] == "assistant") != prefill for c in chats):
            raise ValueError("a batch must be all prefills (ending with an assistant message) or none")
        outputs = self.llm.chat([list(c) for c in chats], sampling, use_tqdm=False,
                                add_generation_prompt=not prefill, continue_final_message=prefill)
        return [
            [
                Completion(
                    text=o.text,
                    prompt_tokens=len(req.prompt_token_ids or []),
                    completion_tokens=len(o.token_ids),
                    finish_reason="length" if o.finish_reason == "length" else "stop",
                )
                for o in req.outputs
            ]
            for req in outputs
        ]
