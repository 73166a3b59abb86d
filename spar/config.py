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
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from spar.errors import UserError


def _help(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING):
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


def _require(section: str, obj: Any, rules: dict[str, tuple[Callable[[Any], bool], str]]) -> None:
    """Raise a fix-it ValueError for the first field breaking its rule: `section.key=value: must be ...`."""
    for name, (ok, what) in rules.items():
        value = getattr(obj, name)
        if not ok(value):
            raise ValueError(f"{section}{name}={value!r}: must be {what}")


def _positive(x) -> bool:
    return x > 0


def _at_least_one(x) -> bool:
    return x >= 1


def _not_negative(x) -> bool:
    return x >= 0


def _probability(x) -> bool:
    return 0 < x <= 1


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
    accept_truncated: bool = _help("let a refinement cut by max_new_tokens end the search as the answer (by default it "
                                   "is judged and may be refined further, but never counts as judged right)", False)

    def __post_init__(self) -> None:
        if self.strategy not in ("bfs", "dfs"):
            raise ValueError(f"search.strategy={self.strategy!r}: choose bfs or dfs")
        _require("search.", self, {
            "branch": (_at_least_one, ">= 1"), "select": (_at_least_one, ">= 1"), "max_depth": (_at_least_one, ">= 1"),
            "max_refinements": (_at_least_one, ">= 1"), "gate": (lambda g: 0 <= g < 1, "in [0, 1)"),
            "temperature": (_not_negative, ">= 0 (0 = greedy)"), "top_p": (_probability, "in (0, 1]"),
            "max_new_tokens": (_at_least_one, ">= 1"),
        })


@dataclass
class LoraSettings:
    r: int = _help("LoRA rank", 16)
    alpha: int = _help("LoRA alpha", 32)
    dropout: float = _help("LoRA dropout", 0.05)
    target_modules: list[str] = _help("modules to adapt", factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])

    def __post_init__(self):
        _require("", self, {"r": (_at_least_one, ">= 1"), "alpha": (_positive, "> 0"),
                                 "dropout": (lambda d: 0 <= d < 1, "in [0, 1)"),
                                 "target_modules": (bool, "a non-empty list of module names")})


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
        _require("train.dpo.", self, {
            "lr": (_positive, "> 0"), "epochs": (_positive, "> 0"), "batch_size": (_at_least_one, ">= 1"),
            "grad_accum": (_at_least_one, ">= 1"), "max_length": (_at_least_one, ">= 1"),
            "warmup_steps": (_not_negative, ">= 0"), "num_processes": (_at_least_one, ">= 1"),
            "beta": (_positive, "> 0 (paper: 0.1)"), "sft_weight": (_not_negative, ">= 0 (0 = plain DPO)"),
        })


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
        _require("train.rft.", self, {
            "lr": (_positive, "> 0"), "epochs": (_positive, "> 0"), "batch_size": (_at_least_one, ">= 1"),
            "grad_accum": (_at_least_one, ">= 1"), "max_length": (_at_least_one, ">= 1"),
            "warmup_steps": (_not_negative, ">= 0"), "num_processes": (_at_least_one, ">= 1"),
        })


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
        _require("", self, {"name": (bool, "a model name or path"), "batch_size": (_at_least_one, ">= 1")})


@dataclass
class DataConfig:
    source: str = _help("synth (procedural instructions) or a JSONL file of Instruction records", "synth")
    n: int = _help("instructions to synthesize", 2000)
    heldout: float = _help("fraction of synthesized instructions held out for evaluation", 0.1)
    per_iteration: int = _help("training instructions used per iteration (0 = all)", 0)
    leak_check: str | None = _help("IFEval-format file whose prompts must not appear among the instructions", None)

    def __post_init__(self):
        _require("data.", self, {"source": (bool, "synth or a path to a JSONL file of Instruction records"),
                                 "n": (_at_least_one, ">= 1"), "heldout": (lambda h: 0 <= h < 1, "in [0, 1)"),
                                 "per_iteration": (_not_negative, ">= 0 (0 = all)")})


@dataclass
class SampleConfig:
    k: int = _help("responses sampled per instruction (paper: 5)", 5)
    temperature: float = _help("actor sampling temperature (paper: 0.9)", 0.9)
    top_p: float = _help("actor nucleus sampling (paper: 0.9)", 0.9)
    max_new_tokens: int = _help("length limit of a response", 512)

    def __post_init__(self):
        _require("sample.", self, {"k": (_at_least_one, ">= 1 (paper: 5)"), "temperature": (_not_negative, ">= 0"),
                                   "top_p": (_probability, "in (0, 1]"), "max_new_tokens": (_at_least_one, ">= 1")})


@dataclass
class JudgeConfig:
    kind: str = _help("llm (the paper), verifier (code only) or hybrid (code + LLM)", "llm")
    n: int = _help("votes per response (paper: 5)", 5)
    temperature: float = _help("judge sampling temperature (paper: 0.7)", 0.7)
    max_new_tokens: int = _help("length limit of one judgment", 256)
    resample: int = _help("extra vote rounds for ties and all-invalid votes", 2)
    always_llm: bool = _help("hybrid: also ask the LLM where code already says no (judge data for RFT)", False)
    min_valid: int | None = _help("readable votes a value needs, else resample, then abstain (null = a majority of n)",
                                  None)

    def __post_init__(self):
        if self.kind not in ("llm", "verifier", "hybrid"):
            raise ValueError(f"judge.kind={self.kind!r}: choose llm, verifier or hybrid")
        _require("judge.", self, {"n": (_at_least_one, ">= 1 (paper: 5)"), "temperature": (_not_negative, ">= 0"),
                                  "max_new_tokens": (_at_least_one, ">= 1"), "resample": (_not_negative, ">= 0")})
        if self.min_valid is not None and (isinstance(self.min_valid, bool) or not isinstance(self.min_valid, int)
                                           or not 1 <= self.min_valid <= self.n):
            raise ValueError(f"judge.min_valid={self.min_valid!r}: must be an integer from 1 to judge.n={self.n}, "
                             f"or null for a majority of n ({self.n // 2 + 1})")


@dataclass
class PairsConfig:
    train_on: str = _help("pairs the actor trains on: refinement (SPaR) or sampled (the w/o-refinement ablation)", "refinement")
    accept_truncated: bool = _help("let a response cut by max_new_tokens be a chosen response (default: never)", False)

    def __post_init__(self):
        if self.train_on not in ("refinement", "sampled"):
            raise ValueError(f"pairs.train_on={self.train_on!r}: choose refinement or sampled")


@dataclass
class RFTDataConfig:
    refine_steps: str = _help("refinement chats per successful tree: last (the step that succeeded, as the paper's "
                              "code) or path (every step on the root-to-best chain whose refinement was judged right)",
                              "last")
    max_refine: int = _help("cap on refinement chats per iteration (reference: 4000)", 4000)
    max_tree_yes: int = _help("cap on positive tree-node critiques (0.5 < V < 1, one per tree; reference: 1500)", 1500)
    max_tree_no: int = _help("cap on negative tree-node critiques (0 < V < 0.5, one per tree; reference: 1000)", 1000)
    max_stage_yes: int = _help("cap on judge-stage critiques of split votes whose majority is yes (reference: 2500)",
                               2500)
    max_stage_no: int = _help("cap on judge-stage critiques of split votes whose majority is no (reference: 500)", 500)
    max_judge: int | None = _help("cap on all judgment chats together, after the caps above (null = no extra cap)",
                                  None)
    accept_truncated: bool = _help("let a refinement or critique cut by max_new_tokens be a training target "
                                   "(default: never)", False)

    def __post_init__(self):
        if self.refine_steps not in ("last", "path"):
            raise ValueError(f"rft_data.refine_steps={self.refine_steps!r}: choose last or path")
        caps = ("max_refine", "max_tree_yes", "max_tree_no", "max_stage_yes", "max_stage_no")
        _require("rft_data.", self, {k: (_not_negative, ">= 0") for k in caps})
        _require("rft_data.", self, {"max_judge": (lambda x: x is None or x >= 0, ">= 0, or null for no extra cap")})


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

    def __post_init__(self):
        _require("eval.", self, {"heldout": (_not_negative, ">= 0"), "max_new_tokens": (_at_least_one, ">= 1"),
                                 "ifeval_limit": (_not_negative, ">= 0 (0 = all)")})


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
        _require("", self, {"iterations": (_at_least_one, ">= 1 (paper: 3)"), "chunk": (_at_least_one, ">= 1"),
                            "name": (lambda n: bool(n) and "/" not in n and n not in (".", ".."),
                                     "a plain folder name (the run directory is <out_dir>/<name>)")})


# ---- loading ---------------------------------------------------------------------------


class ConfigError(UserError):
    pass


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """The run config: defaults, then the YAML file, then dotted `key=value` overrides (YAML values).

    Every error names the key, the value and where it came from (`file:line`
    or the command line), and says how to fix it.
    """
    raw: dict = {}
    origins: dict[str, str] = {}  # dotted key -> where its value was written
    if path is not None:
        if not Path(path).exists():
            raise FileNotFoundError(f"config file {path} not found; presets live in configs/")
        text = Path(path).read_text()
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise ConfigError(f"{where}: not valid YAML ({getattr(e, 'problem', e)}); check indentation and quoting") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
        _key_lines(yaml.compose(text), str(path), "", origins)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: write it as dotted.key=value, e.g. search.branch=2")
        key, value = item.split("=", 1)
        node = raw
        parts = key.split(".")
        for i, p in enumerate(parts[:-1]):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"command line {item!r}: {'.'.join(parts[:i + 1])} is a value, not a section")
        try:
            node[parts[-1]] = yaml.safe_load(value)
        except yaml.YAMLError:
            node[parts[-1]] = value  # e.g. a path with a colon: keep it as the string it is
        origins[key] = f"command line {item!r}"
    return build(RunConfig, raw, "", origins, str(path) if path else "defaults")


def _key_lines(node, path: str, prefix: str, origins: dict[str, str]) -> None:
    """Record `file:line` for every key of a YAML mapping, nested keys dotted."""
    if not isinstance(node, yaml.MappingNode):
        return
    for k, v in node.value:
        key = f"{prefix}{k.value}"
        origins[key] = f"{path}:{k.start_mark.line + 1}"
        _key_lines(v, path, key + ".", origins)


def build(cls, raw: Any, prefix: str = "", origins: dict[str, str] | None = None, source: str = "config"):
    """Instantiate dataclass `cls` from a mapping, checking every key and value type."""
    origins = origins or {}
    section = prefix.rstrip(".")
    where = origins.get(section, source) if section else source
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {section or 'the config'} must be a mapping of keys to values, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            near = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
            hint = f"did you mean {prefix}{near[0]}?" if near else f"known keys: {', '.join(prefix + n for n in names)}"
            # an override `foo.bar=1` creates section foo: report where its first key was written
            origin = origins.get(dotted) or next((o for k, o in origins.items() if k.startswith(dotted + ".")), where)
            raise ConfigError(f"{origin}: unknown config key {dotted}; {hint} "
                              f"(`spar run --help-config` lists every key)")
        kwargs[key] = _coerce(hints[key], value, dotted, origins, origins.get(dotted, where))
    try:
        return cls(**kwargs)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        # __post_init__ names the key (sections used twice, like actor/refiner, without their prefix);
        # point at the line that set it when we know it
        msg = str(e) if str(e).startswith(prefix) else prefix + str(e)
        bad = msg.split("=", 1)[0].strip()
        raise ConfigError(f"{origins.get(bad, where)}: {msg}") from None


_EXPECT = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a mapping", list: "a list"}


def _coerce(tp, value, key: str, origins: dict[str, str], where: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key, origins, where)
    if dataclasses.is_dataclass(tp):
        return build(tp, value if value is not None else {}, key + ".", origins, where)
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
        raise ConfigError(f"{where}: {key}={value!r} should be {_EXPECT.get(base, base)}")
    if base is list and args:
        for item in value:
            _coerce(args[0], item, f"{key}[]", origins, where)
    return float(value) if base is float else value


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def dump_config(cfg) -> str:
    """YAML with every key written out: what runs/<name>/config.yaml holds, loadable by load_config."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def describe(cls=RunConfig, prefix: str = "") -> list[str]:
    """One line per key with its default and help text: what `spar run --help-config` prints."""
    lines = []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            lines.append(f"{prefix}{f.name}.  ({f.metadata.get('help', '')})")
            lines += describe(tp, f"{prefix}{f.name}.")
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            lines.append(f"{prefix}{f.name} = {default!r}: {f.metadata.get('help', '')}")
    return lines
