"""The transformers backend: batched generation on CPU or GPU.

    backend = HFBackend("smollm2-135m-instruct", batch_size=16)
    backend.generate(chats, SamplingParams(n=5, temperature=0.9, top_p=0.9, seed=1))

How a call runs: chats are rendered with the model's chat template, sorted
by prompt length (so a batch holds similar lengths and wastes little on
padding), cut into batches of at most `batch_size` sequences (a chat with
n samples takes n rows, generated together by `num_return_sequences`), left
padded, and generated; results return in input order. Stop strings end a
row inside `generate` and are cut exactly from the text. On out-of-memory
the batch size is halved and the batch retried; when a single chat (with
its n samples) does not fit, the call ends with an error naming the
batch and the settings to lower.

Lifecycle: `close()` drops this backend's model and gives its memory back
(`spar.models.free_memory`); backends on the same model share one loaded
copy, which is freed when the last of them is closed.

Reproducibility: each batch seeds torch's generator from `params.seed` and
the batch's position, so the same call with the same seed, batch size and
inputs gives the same text. Torch does not promise bit-identical sampling
across different batch compositions, devices or thread counts (padding and
matmul blocking change floating-point rounding), so the same chat may get a
different sample inside a different batch. Greedy decoding (temperature 0)
is stable across batches up to such rounding ties.
"""

from __future__ import annotations

from typing import Sequence

from spar.backends.base import Chat, Completion, PromptTooLong, SamplingParams
from spar.errors import UserError


class HFBackend:
    def __init__(self, model: str, device: str | None = None, batch_size: int = 16, dtype: str | None = None):
        import torch

        from spar.models import load_model

        self.name = model
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if batch_size < 1:  # before the model loads
            raise UserError(f"batch_size={batch_size}: must be >= 1")
        self.model, self.tokenizer = load_model(model, self.device, dtype)
        self.batch_size = batch_size
        self._longest_token: int | None = None  # characters of the vocabulary's longest token, once needed

    def render(self, chat: Chat) -> str:
        """The prompt text; a chat ending with an assistant message is continued from its text (a prefill)."""
        if chat and chat[-1]["role"] == "assistant":
            return self.tokenizer.apply_chat_template(chat, tokenize=False, continue_final_message=True)
        return self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)

    def close(self) -> None:
        """Drop the model and tokenizer and free their memory (shared with another open backend, the weights stay
        until that one closes too). Safe to call twice; the backend cannot generate afterwards."""
        if self.model is None:
            return
        self.model = self.tokenizer = None
        from spar.models import free_memory

        free_memory()

    def generate(self, chats: Sequence[Chat], params: SamplingParams) -> list[list[Completion]]:
        if self.model is None:
            raise RuntimeError(f"the hf backend for {self.name} was closed; build a new one to generate again")
        prompts = self._tokenize(chats, params.max_new_tokens)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        results: list[list[Completion] | None] = [None] * len(prompts)
        start, batch_index = 0, 0
        while start < len(order):
            rows_per_chat = params.n if params.temperature > 0 else 1
            per_batch = max(1, self.batch_size // rows_per_chat)
            chunk = order[start : start + per_batch]
            try:
                outs = self._generate_batch([prompts[i] for i in chunk], params, batch_index)
            except RuntimeError as e:  # torch.OutOfMemoryError is a RuntimeError
                if not _is_out_of_memory(e):
                    raise
                _empty_cache()
                if len(chunk) == 1:  # the smallest batch there is: halving again would retry it forever
                    raise _too_large(len(prompts[chunk[0]]), rows_per_chat, self.batch_size, params) from e
                self.batch_size = max(1, self.batch_size // 2)
                continue
            for i, out in zip(chunk, outs):
                results[i] = out
            start += len(chunk)
            batch_index += 1
        return results  # type: ignore[return-value]

    def check_prompts(self, chats: Sequence[Chat], max_new_tokens: int) -> None:
        """Raise PromptTooLong (naming the chat's index) for a chat whose prompt plus `max_new_tokens` exceeds the
        model's context; called by the commands before generating, so the error can name file:line."""
        self._tokenize(chats, max_new_tokens)

    def _tokenize(self, chats: Sequence[Chat], max_new_tokens: int) -> list[list[int]]:
        # Prompts longer than the context are refused, never truncated: a cut instruction is another instruction,
        # and a 20 MB line would otherwise be tokenized and fed to attention (gigabytes before any error). A text
        # longer than context x the longest token cannot fit and is refused before it is tokenized at all.
        context = getattr(self.model.config, "max_position_embeddings", None)
        if context and self._longest_token is None:
            self._longest_token = max(len(t) for t in self.tokenizer.get_vocab())
        out = []
        for index, chat in enumerate(chats):
            text = self.render(chat)
            if context and len(text) > context * self._longest_token:
                raise _prompt_too_long(index, f"{len(text):,} characters", context, max_new_tokens, self.name)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if context and len(ids) + max_new_tokens > context:
                raise _prompt_too_long(index, f"{len(ids):,} tokens", context, max_new_tokens, self.name)
            out.append(ids)
        return out

    def _generate_batch(self, prompts: list[list[int]], params: SamplingParams,
                        batch_index: int) -> list[list[Completion]]:
        import torch

        tok = self.tokenizer
        width = max(len(p) for p in prompts)
        pad = tok.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        sample = params.temperature > 0
        copies = params.n if sample else 1  # greedy samples are all alike: decode once, copy
        kwargs = dict(
            max_new_tokens=params.max_new_tokens,
            num_return_sequences=copies,
            do_sample=sample,
            pad_token_id=pad,
            eos_token_id=_eos_ids(self.model, tok),
        )
        if sample:
            kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if params.repetition_penalty != 1.0:
            kwargs.update(repetition_penalty=params.repetition_penalty)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=tok)
        if params.seed is not None:
            torch.manual_seed(params.seed * 1_000_003 + batch_index)
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        new = out[:, width:].tolist()
        eos = set(kwargs["eos_token_id"])
        results = []
        for row, prompt in enumerate(prompts):
            completions = []
            for seq in new[row * copies : (row + 1) * copies]:
                completions.append(self._completion(seq, len(prompt), eos, params))
            results.append(completions * (params.n // copies))
        return results

    def _completion(self, seq: list[int], prompt_len: int, eos: set[int], params: SamplingParams) -> Completion:
        ended = False
        for j, t in enumerate(seq):
            if t in eos:
                seq, ended = seq[:j], True
                break
        else:
            while seq and seq[-1] == self.tokenizer.pad_token_id:  # a row that stopped on a stop string
                seq = seq[:-1]
        text = self.tokenizer.decode(seq, skip_special_tokens=True)
        cut = min((text.find(s) for s in params.stop if s in text), default=-1)
        if cut >= 0:
            text, ended = text[:cut], True
        finish = "stop" if ended or len(seq) < params.max_new_tokens else "length"
        return Completion(text=text, prompt_tokens=prompt_len, completion_tokens=len(seq), finish_reason=finish)


def _prompt_too_long(index: int, size: str, context: int, max_new_tokens: int, model: str) -> PromptTooLong:
    return PromptTooLong(f"a prompt of {size} does not fit the context of {model} ({context:,} tokens, "
                         f"{max_new_tokens} of them kept for the answer); shorten it or drop it, or use a model "
                         f"with a longer context (spar refuses such prompts rather than cut them)", index)


def _eos_ids(model, tokenizer) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = list(ids) if isinstance(ids, (list, tuple)) else [ids] if ids is not None else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _is_out_of_memory(e: RuntimeError) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    message = str(e).lower()
    # CUDA raises OutOfMemoryError; the CPU allocator raises a plain RuntimeError
    return isinstance(e, oom) or "out of memory" in message or "can't allocate memory" in message


def _too_large(prompt_tokens: int, rows: int, batch_size: int, params: SamplingParams) -> UserError:
    return UserError(
        f"out of memory on a batch of 1 chat x {rows} row(s) (n={params.n} samples, {prompt_tokens} prompt tokens, "
        f"max_new_tokens={params.max_new_tokens}), the smallest batch there is (batch_size is down to {batch_size}); "
        f"lower n (sample.k, judge.n, search.branch, --n) or max_new_tokens (sample., judge., search., "
        f"eval.max_new_tokens, --max-new-tokens), or use a device with more memory")


def _empty_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
