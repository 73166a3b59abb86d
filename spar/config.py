"""Configs: dataclasses with a help text per field, YAML files, dotted overrides, fix-it errors.

    cfg = load_config("configs/cpu-smollm2.yaml", ["search.branch=2", "iterations=1"])
    dump_config(cfg)  # every default written out

Validation happens before any compute: an unknown key names the nearest
known one, a value of the wrong type names the key, the value, the type
expected and the file it came from. Pure Python: no torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import re
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


# transformers' SchedulerType values (listed here so config stays free of torch)
LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                 "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
                 "warmup_stable_decay")


def _check_schedule(section: str, s: Any) -> None:
    """The learning-rate schedule of a trainer's settings: a known scheduler, one way of giving the warmup."""
    if s.lr_scheduler not in LR_SCHEDULERS:
        near = difflib.get_close_matches(str(s.lr_scheduler), LR_SCHEDULERS, n=1)
        hint = f"did you mean {near[0]}?" if near else f"choose one of {', '.join(LR_SCHEDULERS)}"
        raise ValueError(f"{section}lr_scheduler={s.lr_scheduler!r}: not a transformers scheduler; {hint}")
    if not 0 <= s.warmup_ratio < 1:
        raise ValueError(f"{section}warmup_ratio={s.warmup_ratio!r}: must be in [0, 1)")
    if s.warmup_ratio and s.warmup_steps:
        raise ValueError(f"{section}warmup_ratio={s.warmup_ratio!r}: give warmup_ratio or warmup_steps "
                         f"({s.warmup_steps}), not both; set the other to 0")


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
    prefill: bool = _help("start each refinement with the start marker (for small models that skip the reflection)",
                          False)
    accept_truncated: bool = _help("let a refinement cut by max_new_tokens end the search as the answer (by default it "
                                   "is judged and may be refined further, but never counts as judged right)", False)

    def __post_init__(self) -> None:
        if self.strategy not in ("bfs", "dfs"):
            raise ValueError(f"search.strategy={self.strategy!r}: choose bfs or dfs")
        _require("search.", self, {
            "branch": (_at_least_one, ">= 1"), "select": (_at_least_one, ">= 1"), "max_depth": (_at_least_one, ">= 1"),
            "max_refinements": (_at_least_one, ">= 1"), "gate": (lambda g: 0 <= g <= 1, "in [0, 1]"),
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
class TrainSettings:
    """What the actor's DPO and the refiner's RFT share; each names its own section, paper values and extras."""

    lr: float = _help("learning rate")
    epochs: float = _help("epochs")
    batch_size: int = _help("per-device batch size", 2)
    grad_accum: int = _help("gradient accumulation steps", 1)
    max_length: int = _help("token limit of one training example", 1024)
    warmup_steps: int = _help("learning-rate warmup steps (or give warmup_ratio)", 0)
    warmup_ratio: float = _help("warmup as a fraction of all steps (reference: 0.1); 0 = use warmup_steps", 0.0)
    lr_scheduler: str = _help("learning-rate schedule, a transformers SchedulerType (reference: linear)", "linear")
    lora: LoraSettings | None = _help("LoRA adapters (merged before saving); null = full fine-tuning", None)
    seed: int = _help("training seed", 0)
    num_processes: int = _help("processes for `accelerate launch` (1 = in this process)", 1)
    accelerate_config: str | None = _help("accelerate config file, e.g. configs/accelerate/zero3.yaml", None)

    _section = "train."  # the config section errors name (a class attribute, not a setting)

    def __post_init__(self):
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        _check_schedule(self._section, self)
        _require(self._section, self, {
            "lr": (_positive, "> 0"), "epochs": (_positive, "> 0"), "batch_size": (_at_least_one, ">= 1"),
            "grad_accum": (_at_least_one, ">= 1"), "max_length": (_at_least_one, ">= 1"),
            "warmup_steps": (_not_negative, ">= 0"), "num_processes": (_at_least_one, ">= 1"),
        })


@dataclass
class DPOSettings(TrainSettings):
    """The actor's DPO (train/dpo.py)."""

    lr: float = _help("learning rate (paper: 2e-7)", 2e-7)
    epochs: float = _help("epochs (paper: 1)", 1.0)
    max_length: int = _help("token limit of prompt + response", 1024)
    beta: float = _help("DPO temperature beta (paper: 0.1)", 0.1)
    sft_weight: float = _help("weight of the SFT term on chosen (paper: 0.1; 0 = plain DPO)", 0.1)
    precompute_ref_log_probs: bool = _help("compute reference log-probs once before training (faster on CPU)", True)

    _section = "train.dpo."

    def __post_init__(self):
        super().__post_init__()
        _require(self._section, self, {"beta": (_positive, "> 0 (paper: 0.1)"),
                                       "sft_weight": (_not_negative, ">= 0 (0 = plain DPO)")})


@dataclass
class RFTSettings(TrainSettings):
    """The refiner's RFT (train/rft.py), and the bootstrap's SFT of both roles."""

    lr: float = _help("learning rate (paper: 2e-6)", 2e-6)
    epochs: float = _help("epochs (paper: 5)", 5.0)
    max_length: int = _help("token limit of one chat", 1024)
    lr_scheduler: str = _help("learning-rate schedule, a transformers SchedulerType "
                              "(reference: constant_with_warmup)", "linear")

    _section = "train.rft."


# ---- the self-play run ----------------------------------------------------------------


@dataclass
class ModelConfig:
    name: str = _help("model: smollm2-135m-instruct, tiny-random, a local path or a hub id", "smollm2-135m-instruct")
    backend: str = _help("hf, vllm, openai, or auto (vllm where it is installed, else hf); scripted: a fixed reply "
                         "for plumbing tests", "hf")
    batch_size: int = _help("hf backend: sequences per generate call", 16)
    options: dict = _help("extra backend options (base_urls, tensor_parallel_size, api_key_env, ...)", factory=dict)

    def engine_options(self) -> dict:
        """The backend's constructor options: `options`, plus batch_size where the backend is (or auto is) hf."""
        from spar.backends import resolve  # a lazy import: the backends stay out of the config layer

        return {**({"batch_size": self.batch_size} if resolve(self.backend) == "hf" else {}), **self.options}

    def __post_init__(self):
        if self.backend not in ("auto", "hf", "vllm", "openai", "scripted"):
            raise ValueError(f"backend={self.backend!r}: choose auto, hf, vllm or openai")
        _require("", self, {"name": (bool, "a model name or path"), "batch_size": (_at_least_one, ">= 1")})


# Whole constraint kinds held out of training (one per taxonomy class: sentence, layout, numeric format, symbol,
# template), so the held-out split measures following a kind never trained on, not only new wording.
HELDOUT_KINDS = ("sentence:acrostic", "structure:table_shape", "numeric:date_format", "symbol:citations",
                 "template:qa_pairs")


@dataclass
class DataConfig:
    source: str = _help("synth (procedural instructions) or a JSONL file of Instruction records", "synth")
    n: int = _help("instructions to synthesize", 2000)
    heldout: float = _help("fraction of synthesized instructions held out for evaluation", 0.1)
    per_iteration: int = _help("training instructions used per iteration (0 = all)", 0)
    leak_check: str | None = _help("benchmark JSONL (a `prompt` per line) the instructions must not copy; "
                                   "eval.ifeval_data is always checked too", None)
    max_contamination: float = _help("largest share of instructions that may share a contamination_n-word run "
                                     "with a benchmark prompt (leak_check, eval.ifeval_data)", 0.02)
    contamination_n: int = _help("run length in words for the contamination check (8: the usual threshold)", 8)
    heldout_kinds: list[str] = _help("constraint kinds only the held-out split uses (synth): training never sees "
                                     "them, so eval scores unseen kinds", factory=lambda: list(HELDOUT_KINDS))

    def __post_init__(self):
        from spar.constraints import REGISTRY

        for kind in self.heldout_kinds:
            if kind not in REGISTRY:
                near = difflib.get_close_matches(str(kind), list(REGISTRY), n=1)
                raise ValueError(f"data.heldout_kinds={kind!r}: not a constraint kind"
                                 + (f"; did you mean {near[0]}?" if near else " (`spar data stats` lists them)"))
        _require("data.", self, {"source": (bool, "synth or a path to a JSONL file of Instruction records"),
                                 "n": (_at_least_one, ">= 1"), "heldout": (lambda h: 0 <= h < 1, "in [0, 1)"),
                                 "per_iteration": (_not_negative, ">= 0 (0 = all)"),
                                 "max_contamination": (lambda x: 0 <= x <= 1, "in [0, 1] (0.02 = 2%)"),
                                 "contamination_n": (_at_least_one, ">= 1 (8 is usual)")})


@dataclass
class SampleConfig:
    k: int = _help("responses sampled per instruction (paper: 5)", 5)
    temperature: float = _help("actor sampling temperature (paper: 0.9)", 0.9)
    top_p: float = _help("actor nucleus sampling (paper: 0.9)", 0.9)
    max_new_tokens: int = _help("length limit of a response", 512)
    repetition_penalty: float = _help("above 1 discourages repeating a token already in the chat (1 = off; small "
                                      "models loop without it)", 1.0)

    def __post_init__(self):
        _require("sample.", self, {"k": (_at_least_one, ">= 1 (paper: 5)"), "temperature": (_not_negative, ">= 0"),
                                   "top_p": (_probability, "in (0, 1]"), "max_new_tokens": (_at_least_one, ">= 1"),
                                   "repetition_penalty": (_positive, "> 0 (1 = off)")})


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
    train_on: str = _help("pairs the actor trains on: refinement (SPaR) or sampled (the w/o-refinement ablation)",
                          "refinement")
    accept_truncated: bool = _help("let a response cut by max_new_tokens be a chosen response (default: never)", False)
    max_train: int = _help("cap on the pairs the actor trains on per iteration, a seeded sample (0 = all): matches "
                           "the number of pairs across ablations", 0)

    def __post_init__(self):
        if self.train_on not in ("refinement", "sampled"):
            raise ValueError(f"pairs.train_on={self.train_on!r}: choose refinement or sampled")
        _require("pairs.", self, {"max_train": (_not_negative, ">= 0 (0 = all)")})


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
    repetition_penalty: float = _help("repetition penalty of evaluation answers (greedy); the same in every "
                                      "evaluation of a run, base included (1 = off)", 1.0)
    ifeval_data: str | None = _help("IFEval-format file to score before and after (never trained on)", None)
    ifeval_limit: int = _help("score only the first N IFEval prompts (0 = all)", 0)
    soft_judge: bool = _help("also score held-out soft constraints (style, sentiment, ...) with the loop's judge "
                             "settings (one LLM judgment per soft constraint)", False)
    soft_judge_model: str = _help("the model that judges soft constraints in every evaluation, on the refiner's "
                                  "backend; empty: the starting refiner (refiner.name). Never the refiner being "
                                  "trained: a judge that changes between evaluations makes their scores incomparable",
                                  "")

    def __post_init__(self):
        _require("eval.", self, {"heldout": (_not_negative, ">= 0"), "max_new_tokens": (_at_least_one, ">= 1"),
                                 "repetition_penalty": (_positive, "> 0 (1 = off)"),
                                 "ifeval_limit": (_not_negative, ">= 0 (0 = all)")})


@dataclass
class TeacherConfig:
    base_url: str = _help("the teacher's OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1", "")
    model: str = _help("the teacher's model name on that server", "")
    api_key_env: str | None = _help("environment variable holding the API key (null: none)", "OPENAI_API_KEY")

    def __post_init__(self):
        _require("bootstrap.teacher.", self, {"base_url": (bool, "the server's URL, e.g. http://127.0.0.1:8000/v1"),
                                              "model": (bool, "the model name the server serves")})


@dataclass
class BootstrapConfig:
    enabled: bool = _help("SFT actor and refiner before iteration 0 (the paper's SPaR-SFT)", False)
    teacher: TeacherConfig | None = _help("a teacher model writing answers, judgments and refinements; null = "
                                          "teacher-free (verifier critiques and programmatic repairs)", None)
    n: int = _help("training instructions the bootstrap uses", 200)
    per_instruction: int = _help("teacher-free: failing answers repaired per instruction (at most sample.k)", 1)
    max_new_tokens: int = _help("length limit of the teacher's answers, judgments and refinements", 512)
    actor: bool = _help("train the actor on the bootstrap answers", True)
    refiner: bool = _help("train the refiner on the bootstrap judgments and refinements", True)
    train: RFTSettings = _help("SFT settings of both roles (train_rft)", factory=RFTSettings)

    def __post_init__(self):
        if isinstance(self.teacher, dict):
            self.teacher = TeacherConfig(**self.teacher)
        _require("bootstrap.", self, {"n": (_at_least_one, ">= 1"), "max_new_tokens": (_at_least_one, ">= 1"),
                                      "per_instruction": (_at_least_one, ">= 1")})


@dataclass
class RunConfig:
    name: str = _help("run name: the run directory is <out_dir>/<name>", "spar")
    out_dir: str = _help("where run directories live", "runs")
    iterations: int = _help("self-play iterations (paper: 3)", 3)
    seed: int = _help("seed of every random choice", 0)
    chunk: int = _help("instructions per resumable chunk of a stage", 32)
    actor: ModelConfig = _help("the actor model", factory=ModelConfig)
    refiner: ModelConfig = _help("the refiner model (judge and refine); same name = one shared copy",
                                 factory=ModelConfig)
    data: DataConfig = _help("instructions", factory=DataConfig)
    sample: SampleConfig = _help("negative data collection: sampling", factory=SampleConfig)
    judge: JudgeConfig = _help("negative data collection: judging", factory=JudgeConfig)
    search: SearchConfig = _help("tree-search refinement", factory=SearchConfig)
    pairs: PairsConfig = _help("preference pairs", factory=PairsConfig)
    rft_data: RFTDataConfig = _help("refiner training data", factory=RFTDataConfig)
    train: TrainConfig = _help("training", factory=TrainConfig)
    eval: EvalConfig = _help("evaluation", factory=EvalConfig)
    bootstrap: BootstrapConfig = _help("SFT of both roles before iteration 0", factory=BootstrapConfig)

    def __post_init__(self):
        _require("", self, {"iterations": (_at_least_one, ">= 1 (paper: 3)"), "chunk": (_at_least_one, ">= 1"),
                            "name": (lambda n: bool(_PLAIN_NAME.fullmatch(n)),
                                     "a plain folder name: letters, digits, '.', '_' and '-', starting with a letter "
                                     "or digit (the run directory is <out_dir>/<name>; a path goes in out_dir)")})


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


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
    texts: dict[str, str] = {}  # dotted key -> its unquoted value as written (a str field keeps `no` and `2024`)
    if path is not None:
        raw, origins, texts = _read_file(path)
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
        node[parts[-1]] = parse_value(value, key, texts)
        origins[key] = f"command line {item!r}"
    keep_text(RunConfig, raw, "", texts)
    return build(RunConfig, raw, "", origins, str(path) if path else "defaults")


def _read_file(path: str | Path, seen: tuple = ()) -> tuple[dict, dict[str, str], dict[str, str]]:
    """(raw mapping, origins, texts) of a YAML config file. A file may start from another: `base: other.yaml`
    (relative to the file) is read first and this file's keys are merged over it, section by section, so an
    ablation is a few lines: its name and the keys it changes."""
    origins: dict[str, str] = {}
    texts: dict[str, str] = {}
    if not Path(path).exists():
        raise FileNotFoundError(f"config file {path} not found; presets live in configs/")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r}); "
                          f"save the config as UTF-8") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(e, 'problem', e)}); "
                          f"check indentation and quoting") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    _key_lines(yaml.compose(text), str(path), "", origins)
    _plain_texts(yaml.compose(text), "", texts)
    base = raw.pop("base", None)
    if base is None:
        return raw, origins, texts
    base_path = Path(path).parent / str(base)
    if not isinstance(base, str) or not base_path.is_file():
        raise ConfigError(f"{origins.get('base', path)}: base={base!r}: not a config file (a path relative to "
                          f"{path}, e.g. base: cpu-quality.yaml)")
    if base_path.resolve() in seen or base_path.resolve() == Path(path).resolve():
        raise ConfigError(f"{origins.get('base', path)}: base={base!r} leads back to {path}; break the cycle")
    b_raw, b_origins, b_texts = _read_file(base_path, seen + (Path(path).resolve(),))
    return _merge(b_raw, raw), {**b_origins, **origins}, {**b_texts, **texts}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_value(text: str, key: str, texts: dict[str, str]) -> Any:
    """A command-line value read as YAML (numbers, true/false, null, {a: 1}, [x, y]); its text noted under `key`."""
    try:
        _plain_texts(yaml.compose(text), key, texts)
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        if text.lstrip()[:1] in ("{", "["):  # meant as a mapping or a list: say what is wrong with it
            raise ConfigError(f"command line '{key}={text}': not valid YAML ({getattr(e, 'problem', e)}); write "
                              f"a mapping as {key}={{a: 1, b: x}} and a list as {key}=[x, y], quoted in the shell"
                              ) from None
        texts[key] = text
        return text  # e.g. a path with a colon: keep it as the string it is


def _plain_texts(node, key: str, texts: dict[str, str]) -> None:
    """Note the text of every unquoted scalar of a YAML node, nested keys dotted."""
    if isinstance(node, yaml.ScalarNode) and node.style is None and key:
        texts[key] = node.value
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            _plain_texts(v, f"{key}.{k.value}" if key else str(k.value), texts)


def keep_text(cls, raw: Any, prefix: str, texts: dict[str, str]) -> None:
    """Give string fields their values as written: YAML reads `no` as false and `2024` as a number,
    but `name: no` means the name "no". The field's type decides, so `train.actor: no` stays false."""
    if not isinstance(raw, dict) or not dataclasses.is_dataclass(cls):
        return
    hints = typing.get_type_hints(cls)
    for key, value in raw.items():
        tp = hints.get(key)
        if tp is None:
            continue  # an unknown key: build() names it
        options = [a for a in typing.get_args(tp) if a is not type(None)] if typing.get_origin(tp) in (
            typing.Union, types.UnionType) else [tp]
        dotted = f"{prefix}{key}"
        if options == [str] and isinstance(value, (bool, int, float)) and dotted in texts:
            raw[key] = texts[dotted]
        elif len(options) == 1 and dataclasses.is_dataclass(options[0]):
            keep_text(options[0], value, dotted + ".", texts)


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


# a number as YAML 1.2 writes it, exponent without a dot included (1e-5, 2E+3, .5)
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_EXPECT = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a mapping",
           list: "a list"}


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
    if base is float and isinstance(value, str) and _FLOAT.match(value.strip()):
        value = float(value)  # YAML 1.1 (PyYAML) reads 2e-7 as a string; a number field takes it as the number
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
    if base is float and not math.isfinite(value):
        raise ConfigError(f"{where}: {key}={value!r} should be a finite number")
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


# ---- command-line flags from the same dataclasses ------------------------------------------
#
# `spar judge`, `spar search` and `spar generate` take some of the loop's settings as flags. The
# flags are made from the dataclass fields above, so a flag has the config key's default and help
# text, and its value goes through the same checks (`build`), with errors naming the flag.


def _flag_fields(cls, only=None, exclude=()):
    """The fields of `cls` a flag can carry: scalars (numbers, text, true/false, optional text)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if (only is not None and f.name not in only) or f.name in exclude:
            continue
        tp = hints[f.name]
        inner = [a for a in typing.get_args(tp) if a is not type(None)] if typing.get_origin(tp) in (
            typing.Union, types.UnionType) else [tp]
        if len(inner) == 1 and inner[0] in (int, float, str, bool):
            yield f, inner[0]


def add_flags(parser, cls, section: str, *, rename: dict[str, str] | None = None, prefix: str = "--",
              only=None, exclude=()) -> None:
    """Add a `--flag` for each scalar field of dataclass `cls` (the settings under `section`, e.g. "judge.").

    A field's flag is `prefix` + its name with dashes (`max_new_tokens` -> `--max-new-tokens`) unless
    `rename` names it (`{"kind": "--judge"}`). A flag left out keeps the dataclass default; read the
    settings back with `flags_config(args, cls, section)`.
    """
    rename = rename or {}
    for f, base in _flag_fields(cls, only, exclude):
        flag = rename.get(f.name, prefix + f.name.replace("_", "-"))
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        text = f"{f.metadata.get('help', '')} (config key {section}{f.name}; default: {default})".replace("%", "%%")
        parser.set_defaults(**{f"_flag:{section}{f.name}": flag})  # the flag as named, for error messages
        if base is bool:
            parser.add_argument(flag, dest=section + f.name, default=None, help=text,
                                action=argparse.BooleanOptionalAction)
        else:
            metavar = {int: "INT", float: "NUMBER", str: "TEXT"}[base]
            parser.add_argument(flag, dest=section + f.name, default=None, metavar=metavar, help=text)


def flags_config(args, cls, section: str):
    """The `cls` settings from flags added by `add_flags`: defaults, then the flags given, checked by `build`.

    A bad value is a ConfigError naming the flag as typed, the config key, the value and the fix.
    """
    raw, origins, texts = {}, {}, {}
    for f, base in _flag_fields(cls):
        flag = getattr(args, f"_flag:{section}{f.name}", None)  # None: the verb has no flag for this field
        given = getattr(args, section + f.name, None)
        if flag is None or given is None:
            continue
        if isinstance(given, bool):
            raw[f.name] = given
            origins[section + f.name] = f"command line '{flag if given else flag.replace('--', '--no-', 1)}'"
        else:
            raw[f.name] = parse_value(given, section + f.name, texts)
            origins[section + f.name] = f"command line '{flag} {given}'"
    keep_text(cls, raw, section, texts)
    return build(cls, raw, section, origins, "defaults")


# ---- resuming a run under a changed config -------------------------------------------------
#
# A run directory holds the config it was started with (config.yaml). Rerunning it with a different
# config is allowed only where the difference cannot change what the run computes; each accepted
# change is recorded in the manifest. Decided key by key:
#
# accepted (how fast or where, never what):
#   out_dir                      the runs folder moved or is named another way
#   actor/refiner.batch_size     sequences per generate call
#   actor/refiner.options: base_urls, api_key_env, concurrency, timeout, max_retries, backoff, max_backoff,
#                                down_after, down_for (openai: which servers, how patiently), gpu_memory_utilization,
#                                enable_prefix_caching, tensor_parallel_size (vllm: how the same model is laid out),
#                                batch_size, device (hf)
#   train.dpo/rft.precompute_ref_log_probs, accelerate_config   how training runs, not what it optimizes
#   train.dpo/rft.batch_size, grad_accum, num_processes         only together, when the effective batch
#                                (batch_size x grad_accum x num_processes) stays the same: e.g. half the
#                                per-device batch and twice the accumulation after running out of memory
#   eval.*                       evaluation reads the checkpoints and writes nothing training uses
#   data.leak_check, max_contamination, contamination_n   a check that passed or stopped the run; it changes
#                                no instruction
#   iterations                   more iterations, or fewer as long as none is dropped that has started
#   bootstrap.teacher.base_url, api_key_env   where the same teacher model is served
#
# refused (they change results): everything else. In particular seed and chunk (a chunk's seed is derived
# from its index, so another chunk size samples differently), the models and backends, every data.*,
# sample.*, judge.*, search.*, pairs.*, rft_data.* key, and the training hyperparameters. A key added to a
# dataclass is refused unless it is listed here: the safe default for a setting nobody has judged yet.

RESUME_SAFE = (
    "out_dir", "actor.batch_size", "refiner.batch_size", "eval.*", "data.leak_check", "data.max_contamination",
    "data.contamination_n",
    "train.*.precompute_ref_log_probs", "train.*.accelerate_config",
    "bootstrap.teacher.base_url", "bootstrap.teacher.api_key_env", "bootstrap.train.accelerate_config",
    *(f"{role}.options.{k}" for role in ("actor", "refiner") for k in (
        "base_urls", "api_key_env", "concurrency", "timeout", "max_retries", "backoff", "max_backoff",
        "gpu_memory_utilization", "enable_prefix_caching", "tensor_parallel_size", "batch_size", "device",
        "replicas", "gpus_per_replica", "startup_timeout", "down_after", "down_for")),
)
_EFFECTIVE_BATCH = ("batch_size", "grad_accum", "num_processes")
ABSENT = "(not set)"


def flat_settings(cfg, prefix: str = "") -> dict[str, Any]:
    """Every setting of a config by dotted key; model options one key each, other values whole (lora: a dict)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and f.name != "lora":
            out.update(flat_settings(value, f"{prefix}{f.name}."))
        elif f.name == "options" and isinstance(value, dict):
            out.update({f"{prefix}options.{k}": v for k, v in value.items()})
        else:
            out[prefix + f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return out


def differing(old, new) -> dict[str, tuple]:
    """The settings that differ between two configs: dotted key -> (old value, new value)."""
    a, b = flat_settings(old), flat_settings(new)
    return {k: (a.get(k, ABSENT), b.get(k, ABSENT)) for k in sorted(set(a) | set(b))
            if a.get(k, ABSENT) != b.get(k, ABSENT)}


def matches(key: str, patterns) -> bool:
    """Whether a dotted key matches one of the glob patterns (`train.*`)."""
    import fnmatch

    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def resume_changes(old: RunConfig, new: RunConfig, started: int) -> tuple[dict, dict]:
    """(accepted, refused): the settings that differ, `key -> (old, new)`, split by RESUME_SAFE above.

    `started` is the number of iterations that have begun; `iterations` may not drop below it.
    """
    a, b = flat_settings(old), flat_settings(new)
    accepted, refused = {}, {}
    for key, (was, now) in differing(old, new).items():
        section, _, field_name = key.rpartition(".")
        if key == "iterations":
            ok = now >= started
        elif section in ("train.dpo", "train.rft") and field_name in _EFFECTIVE_BATCH:
            ok = math.prod(a[f"{section}.{k}"] for k in _EFFECTIVE_BATCH) == math.prod(
                b[f"{section}.{k}"] for k in _EFFECTIVE_BATCH)
        else:
            ok = matches(key, RESUME_SAFE)
        (accepted if ok else refused)[key] = (was, now)
    return accepted, refused
