"""The transformers backend on the tiny random model (and the embedded one, slow)."""

import pytest

from spar.backends import SamplingParams, make_backend
from spar.models import load_model, model_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_backend("hf", "tiny-random", batch_size=4)


CHATS = [[{"role": "user", "content": "x" * i}] for i in (1, 7, 3, 12, 5)]


def test_tiny_model_is_deterministic_and_shared(tiny):
    """Two loads share one copy; the weights come from a fixed seed."""
    again = make_backend("hf", "tiny-random")
    assert again.model is tiny.model
    assert (model_dir("tiny-random") / "model.safetensors").exists()


def test_shapes_order_and_counts(tiny):
    out = tiny.generate(CHATS, SamplingParams(n=3, temperature=1.0, max_new_tokens=8, seed=1))
    assert [len(r) for r in out] == [3] * len(CHATS)
    for chat, row in zip(CHATS, out):
        rendered = tiny.tokenizer(tiny.render(chat), add_special_tokens=False)["input_ids"]
        for c in row:
            assert c.prompt_tokens == len(rendered)  # results are in input order, not length order
            assert 0 <= c.completion_tokens <= 8


def test_same_seed_same_samples_other_seed_differs(tiny):
    p = SamplingParams(n=2, temperature=1.0, max_new_tokens=10, seed=7)
    a = [[c.text for c in r] for r in tiny.generate(CHATS, p)]
    b = [[c.text for c in r] for r in tiny.generate(CHATS, p)]
    c = [[c.text for c in r] for r in tiny.generate(CHATS, p.with_(seed=8))]
    assert a == b
    assert a != c


def test_greedy_equals_single_request_greedy(tiny):
    """Batching (padding, sorting) does not change greedy answers."""
    p = SamplingParams(max_new_tokens=10)
    batched = [r[0].text for r in tiny.generate(CHATS, p)]
    alone = [tiny.generate([chat], p)[0][0].text for chat in CHATS]
    assert batched == alone


def test_length_finish_reason(tiny):
    out = tiny.generate(CHATS[:1], SamplingParams(max_new_tokens=5, temperature=1.0, seed=0))
    c = out[0][0]
    assert c.completion_tokens <= 5
    if c.completion_tokens == 5:
        assert c.finish_reason == "length"


def test_stop_string_cuts_exactly(tiny):
    """The text ends right before the first stop string, and the row counts as stopped."""
    p = SamplingParams(n=4, temperature=1.0, max_new_tokens=40, seed=3)
    free = [c.text for r in tiny.generate(CHATS, p) for c in r]
    # a plain ASCII character the unconstrained samples contain (the random byte-level model also
    # emits invalid UTF-8, whose decoded replacement character is no usable stop string)
    counts = {ch: sum(ch in t for t in free) for ch in "abcdefghijklmnopqrstuvwxyz0123456789"}
    stop = max(counts, key=counts.get)
    assert counts[stop] > 0
    stopped = [c for r in tiny.generate(CHATS, p.with_(stop=(stop,))) for c in r]
    assert all(stop not in c.text for c in stopped)
    assert any(c.finish_reason == "stop" and c.completion_tokens < 40 for c in stopped)


def test_oom_halves_batch_size(tiny, monkeypatch):
    calls = []
    real = tiny._generate_batch

    def flaky(prompts, params, index):
        calls.append(len(prompts))
        if len(prompts) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate ...")
        return real(prompts, params, index)

    monkeypatch.setattr(tiny, "_generate_batch", flaky)
    monkeypatch.setattr(tiny, "batch_size", 4)
    out = tiny.generate(CHATS, SamplingParams(max_new_tokens=3))
    assert len(out) == len(CHATS) and all(len(r) == 1 for r in out)
    assert calls[0] == 4 and max(calls[1:]) <= 2
    assert tiny.batch_size == 2


def _always_out_of_memory(tiny, monkeypatch):
    """The model's generate always runs out of memory; returns the batch shapes it was asked for."""
    import torch

    rows = []

    def generate(input_ids, **kwargs):
        rows.append((input_ids.shape[0], kwargs["num_return_sequences"]))
        if len(rows) > 20:  # the old code retried forever: stop the test instead of hanging
            raise AssertionError(f"out-of-memory retried {len(rows)} times")
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(tiny.model, "generate", generate)
    monkeypatch.setattr(tiny, "batch_size", 8)
    return rows


@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_oom_with_n_samples_ends_with_an_error_naming_the_batch(tiny, monkeypatch, temperature):
    """Old code: with n > 1, a batch of one chat that did not fit was retried forever (and greedy n > 1 too)."""
    from spar.errors import UserError

    rows = _always_out_of_memory(tiny, monkeypatch)
    with pytest.raises(UserError) as e:
        tiny.generate(CHATS, SamplingParams(n=3, temperature=temperature, max_new_tokens=7, seed=0))
    message = str(e.value)
    copies = 3 if temperature else 1
    prompt = max(len(tiny.tokenizer(tiny.render(c), add_special_tokens=False)["input_ids"]) for c in CHATS)
    assert f"1 chat x {copies} row(s) (n=3 samples, {prompt} prompt tokens, max_new_tokens=7)" in message
    assert "batch_size" in message and "sample.k" in message and "max_new_tokens" in message
    assert rows[-1] == (1, copies) and len(rows) <= 4  # halved down to one chat, then gave up
    assert isinstance(e.value.__cause__, RuntimeError)


def test_oom_of_a_single_chat_and_sample_is_the_same_clear_error(tiny, monkeypatch):
    from spar.errors import UserError

    _always_out_of_memory(tiny, monkeypatch)
    with pytest.raises(UserError, match=r"1 chat x 1 row\(s\) \(n=1 samples"):
        tiny.generate(CHATS[:1], SamplingParams(max_new_tokens=4))


def test_other_runtime_errors_are_not_taken_for_oom(tiny, monkeypatch):
    def generate(input_ids, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(tiny.model, "generate", generate)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        tiny.generate(CHATS, SamplingParams(max_new_tokens=4))


def test_unknown_model_error_names_it():
    with pytest.raises(FileNotFoundError, match="no config.json"):
        model_dir(".")


@pytest.mark.slow
def test_embedded_model_generates():
    backend = make_backend("hf", "smollm2-135m-instruct")
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    out = backend.generate([chat], SamplingParams(max_new_tokens=20))
    assert "Paris" in out[0][0].text
    model, _ = load_model("smollm2-135m-instruct")
    assert model.config.num_hidden_layers == 30


def test_greedy_with_n_copies_one_decode(tiny):
    """transformers refuses num_return_sequences > 1 when greedy; n greedy samples are one decode copied."""
    out = tiny.generate(CHATS[:2], SamplingParams(n=3, max_new_tokens=6))
    assert [len(r) for r in out] == [3, 3]
    assert all(len({c.text for c in r}) == 1 for r in out)


def test_repetition_penalty_breaks_greedy_loops(tiny):
    """The tiny random model loops under greedy decoding; a strong repetition penalty makes it use other tokens
    (transformers' penalty, passed through), and 1.0 leaves the answer as it was."""
    chat = [[{"role": "user", "content": "abc"}]]
    p = SamplingParams(max_new_tokens=40)
    plain = tiny.generate(chat, p)[0][0].text
    assert tiny.generate(chat, p.with_(repetition_penalty=1.0))[0][0].text == plain
    penalized = tiny.generate(chat, p.with_(repetition_penalty=5.0))[0][0].text
    assert penalized != plain
    assert len(set(penalized)) > len(set(plain))


def test_repetition_penalty_must_be_positive():
    from spar.errors import UserError

    with pytest.raises(UserError, match=r"repetition_penalty=0: must be > 0 \(1 = off\)"):
        SamplingParams(repetition_penalty=0)
