"""Configs: dataclasses with a help text per field, YAML files, dotted overrides, fix-it errors.

    cfg = load_config("configs/cpu-smollm2.yaml", ["search.branch=2", "iterations=1"])
    dump_config(cfg)  # every default written out

Validation happens before any compute: an unknown key names the nearest
known one, a value of the wrong type names the key, the value, the type
expected and the file it came from. Pure Python: no torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


def _help(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING):
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


# ---- settings of the method's parts (used by search/ and train/) --------------------------


@dataclass
class SearchConfig:
    strategy: str = _help("bfs (the paper's default) or dfs", "bfs")
    branch: int = _help("refinements written per expanded node", 3)
    select: int = _help("best children kept for the next level (BFS) or visited in order (DFS)", 2)
    max_depth: int = _help("depth limit of a tree", 3)
    gate: float = _help("a node with value > gate is judged right and ends the search", 0.5)
    max_refinements: int = _help("cap on refinements per tree", 15)
    temperature: float = _help("refiner sampling temperature", 0.7)
    top_p: float = _help("refiner nucleus sampling", 1.0)
    max_new_tokens: int = _help("length limit of one refinement (reflection included)", 384)
    seed: int = _help("sampling seed of the search", 0)
    prefill: bool = _help("start each refinement with the start marker (for small models that skip the reflection)", False)

    def __post_init__(self) -> None:
        if self.strategy not in ("bfs", "dfs"):
            raise ValueError(f"search.strategy={self.strategy!r}: choose bfs or dfs")
        for name in ("branch", "select", "max_depth", "max_refinements"):
            if getattr(self, name) < 1:
                raise ValueError(f"search.{name}={getattr(self, name)}: must be >= 1")
        if not 0 <= self.gate < 1:
            raise ValueError(f"search.gate={self.gate}: must be in [0, 1)")


@dataclass
class LoraSettings:
    r: int = _help("LoRA rank", 16)
    alpha: int = _help("LoRA alpha", 32)
    dropout: float = _help("LoRA dropout", 0.05)
    target_modules: list[str] = _help("modules to adapt", factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class DPOSettings:
    beta: float = _help("DPO temperature beta (paper: 0.1)", 0.1)
    sft_weight: float = _help("weight of the SFT term on chosen (paper: 0.1; 0 = plain DPO)", 0.1)
    lr: float = _help("learning rate (paper: 2e-7)", 2e-7)
    epochs: float = _help("epochs (paper: 1)", 1.0)
    batch_size: int = _help("per-device batch size", 2)
    grad_accum: int = _help("gradient accumulation steps", 1)
    max_length: int = _help("token limit of prompt + response", 1024)
    warmup_steps: int = _help("learning-rate warmup steps", 0)
    precompute_ref_log_probs: bool = _help("compute reference log-probs once before training (faster on CPU)", True)
    lora: LoraSettings | None = _help("LoRA adapters (merged before saving); null = full fine-tuning", None)
    seed: int = _help("training seed", 0)
    num_processes: int = _help("processes for `accelerate launch` (1 = in this process)", 1)
    accelerate_config: str | None = _help("accelerate config file, e.g. configs/accelerate/zero3.yaml", None)

    def __post_init__(self):
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)


@dataclass
class RFTSettings:
    lr: float = _help("learning rate (paper: 2e-6)", 2e-6)
    epochs: float = _help("epochs (paper: 5)", 5.0)
    batch_size: int = _help("per-device batch size", 2)
    grad_accum: int = _help("gradient accumulation steps", 1)
    max_length: int = _help("token limit of one chat", 1024)
    warmup_steps: int = _help("learning-rate warmup steps", 0)
    lora: LoraSettings | None = _help("LoRA adapters (merged before saving); null = full fine-tuning", None)
    seed: int = _help("training seed", 0)
    num_processes: int = _help("processes for `accelerate launch` (1 = in this process)", 1)
    accelerate_config: str | None = _help("accelerate config file", None)

    def __post_init__(self):
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)


# ---- the self-play run ----------------------------------------------------------------


@dataclass
class ModelConfig:
    name: str = _help("model: smollm2-135m-instruct, tiny-random, a local path or a hub id", "smollm2-135m-instruct")
    backend: str = _help("hf, vllm or openai (or scripted, a fixed reply for plumbing tests)", "hf")
    batch_size: int = _help("hf backend: sequences per generate call", 16)
    options: dict = _help("extra backend options (base_urls, tensor_parallel_size, api_key_env, ...)", factory=dict)

    def __post_init__(self):
        if self.backend not in ("hf", "vllm", "openai", "scripted"):
            raise ValueError(f"backend={self.backend!r}: choose hf, vllm or openai")


@dataclass
class DataConfig:
    source: str = _help("synth (procedural instructions) or a JSONL file of Instruction records", "synth")
    n: int = _help("instructions to synthesize", 2000)
    heldout: float = _help("fraction of synthesized instructions held out for evaluation", 0.1)
    per_iteration: int = _help("training instructions used per iteration (0 = all)", 0)
    leak_check: str | None = _help("IFEval-format file whose prompts must not appear among the instructions", None)


@dataclass
class SampleConfig:
    k: int = _help("responses sampled per instruction (paper: 5)", 5)
    temperature: float = _help("actor sampling temperature (paper: 0.9)", 0.9)
    top_p: float = _help("actor nucleus sampling (paper: 0.9)", 0.9)
    max_new_tokens: int = _help("length limit of a response", 512)


@dataclass
class JudgeConfig:
    kind: str = _help("llm (the paper), verifier (code only) or hybrid (code + LLM)", "llm")
    n: int = _help("votes per response (paper: 5)", 5)
    temperature: float = _help("judge sampling temperature (paper: 0.7)", 0.7)
    max_new_tokens: int = _help("length limit of one judgment", 256)
    resample: int = _help("extra vote rounds for ties and all-invalid votes", 2)
    always_llm: bool = _help("hybrid: also ask the LLM where code already says no (judge data for RFT)", False)

    def __post_init__(self):
        if self.kind not in ("llm", "verifier", "hybrid"):
            raise ValueError(f"judge.kind={self.kind!r}: choose llm, verifier or hybrid")


@dataclass
class PairsConfig:
    train_on: str = _help("pairs the actor trains on: refinement (SPaR) or sampled (the w/o-refinement ablation)", "refinement")

    def __post_init__(self):
        if self.train_on not in ("refinement", "sampled"):
            raise ValueError(f"pairs.train_on={self.train_on!r}: choose refinement or sampled")


@dataclass
class RFTDataConfig:
    max_refine: int = _help("cap on refinement chats per iteration", 2000)
    max_judge: int = _help("cap on judgment chats per iteration", 2000)


@dataclass
class TrainConfig:
    actor: bool = _help("train the actor by DPO", True)
    refiner: bool = _help("train the refiner by RFT", True)
    dpo: DPOSettings = _help("DPO settings", factory=DPOSettings)
    rft: RFTSettings = _help("RFT settings", factory=RFTSettings)


@dataclass
class EvalConfig:
    heldout: int = _help("held-out synthesized instructions scored with the verifier (0 = skip)", 100)
    max_new_tokens: int = _help("length limit of an evaluation answer", 512)
    ifeval_data: str | None = _help("IFEval-format file to score before and after (never trained on)", None)
    ifeval_limit: int = _help("score only the first N IFEval prompts (0 = all)", 0)


@dataclass
class RunConfig:
    name: str = _help("run name: the run directory is <out_dir>/<name>", "spar")
    out_dir: str = _help("where run directories live", "runs")
    iterations: int = _help("self-play iterations (paper: 3)", 3)
    seed: int = _help("seed of every random choice", 0)
    chunk: int = _help("instructions per resumable chunk of a stage", 32)
    actor: ModelConfig = _help("the actor model", factory=ModelConfig)
    refiner: ModelConfig = _help("the refiner model (judge and refine); same name = one shared copy", factory=ModelConfig)
    data: DataConfig = _help("instructions", factory=DataConfig)
    sample: SampleConfig = _help("negative data collection: sampling", factory=SampleConfig)
    judge: JudgeConfig = _help("negative data collection: judging", factory=JudgeConfig)
    search: SearchConfig = _help("tree-search refinement", factory=SearchConfig)
    pairs: PairsConfig = _help("preference pairs", factory=PairsConfig)
    rft_data: RFTDataConfig = _help("refiner training data", factory=RFTDataConfig)
    train: TrainConfig = _help("training", factory=TrainConfig)
    eval: EvalConfig = _help("evaluation", factory=EvalConfig)

    def __post_init__(self):
        if self.iterations < 1:
            raise ValueError(f"iterations={self.iterations}: must be >= 1")


# ---- loading ---------------------------------------------------------------------------


class ConfigError(ValueError):
    pass


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    raw: dict = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        if not Path(path).exists():
            raise FileNotFoundError(f"config file {path} not found; presets live in configs/")
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: write it as dotted.key=value, e.g. search.branch=2")
        key, value = item.split("=", 1)
        node = raw
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} is not a section")
        node[parts[-1]] = yaml.safe_load(value)
    return build(RunConfig, raw, "", source)


def build(cls, raw: Any, prefix: str, source: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'the config'} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            near = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {prefix}{near[0]}?" if near else f"; known keys: {', '.join(prefix + n for n in names)}"
            raise ConfigError(f"{source}: unknown config key {prefix}{key}{hint}")
        kwargs[key] = _coerce(hints[key], value, f"{prefix}{key}", source)
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise ConfigError(f"{source}: {e}") from None


def _coerce(tp, value, key: str, source: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key, source)
    if dataclasses.is_dataclass(tp):
        return build(tp, value if value is not None else {}, key + ".", source)
    expect = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a mapping", list: "a list"}
    base = origin or tp
    ok = (
        (base is bool and isinstance(value, bool))
        or (base is int and isinstance(value, int) and not isinstance(value, bool))
        or (base is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (base is str and isinstance(value, str))
        or (base is dict and isinstance(value, dict))
        or (base is list and isinstance(value, list))
    )
    if not ok:
        raise ConfigError(f"{source}: {key}={value!r} should be {expect.get(base, base)}")
    return float(value) if base is float else value


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def dump_config(cfg) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def describe(cls=RunConfig, prefix: str = "") -> list[str]:
    """One line per key with its help text: what `spar run --help-config` prints."""
    lines = []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            lines += describe(tp, f"{prefix}{f.name}.")
        else:
            lines.append(f"{prefix}{f.name}: {f.metadata.get('help', '')}")
    return lines
