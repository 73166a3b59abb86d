"""What the DPO and RFT trainers share: the one training path, machine settings, loading, LoRA, data, checkpoints.

    train("spar.train.dpo", build_dpo_trainer, model, rows, out_dir, settings)   # what train_dpo does

writes the rows beside `out_dir`, then either fits in this process or runs
`accelerate launch -m spar.train.dpo`, whose `main` (`entry` below) fits in
each process. A trainer module brings only what is its own: the TRL
trainer its `build` function sets up, and the check of its records.

Training reads a model from a directory (TRL rebuilds a reference model from
the policy's path, and launched processes each load it) and writes a new
directory: safetensors + tokenizer + train_metrics.json, assembled in a
hidden folder beside it and renamed into place only when complete. The
scratch folder (trainer output, data file, datasets cache) is removed after.

    <out>/                 the checkpoint (after the rename)
    .<out>-work/           scratch, shared by the processes of a launch
    .<out>-save/           the checkpoint being assembled
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from spar.config import LoraSettings, TrainSettings
from spar.records import read_jsonl
from spar.train.launch import entry_args, launch, read_settings, wanted

# build(model_dir, data_file, out_dir, settings) -> (trainer, tokenizer): a TRL trainer over the data file
Build = Callable[[Path, Path, Path, Any], tuple[Any, Any]]


def train(module: str, build: Build, model: str | Path, rows: list[dict], out_dir: str | Path,
          settings: TrainSettings) -> Path:
    """Train `model` (a directory or spar model name) on `rows` and save the checkpoint to `out_dir`.

    Runs in this process, or through `accelerate launch -m <module>` when
    the settings name several processes or an accelerate config; either
    way the rows are written beside `out_dir` first, so every process reads
    the same file.
    """
    base, out_dir = resolve_model(model), Path(out_dir)
    data = write_data(out_dir, rows)
    if wanted(settings):
        return launch(module, data, base, out_dir, settings)
    return fit(build, base, data, out_dir, settings)


def fit(build: Build, model_dir: Path, data_file: Path, out_dir: Path, settings: TrainSettings) -> Path:
    """Build the trainer, train, and save the checkpoint with its metrics (this process's part of a launch)."""
    started = time.time()
    trainer, tokenizer = build(model_dir, data_file, out_dir, settings)
    result = trainer.train()
    metrics = summarize(trainer, started, len(trainer.train_dataset), result.metrics["train_runtime"])
    return save_checkpoint(trainer, tokenizer, model_dir, out_dir, metrics)


def entry(build: Build, settings_cls: type, record_cls: type, description: str, data_name: str,
          check: Callable[[Any, str], Any] | None = None) -> None:
    """The `main` of a training module: what `accelerate launch` runs in each process.

    The data file's records are read (and `check`ed) before a model loads,
    so a bad line stops every process at once, named file:line; a bad file
    or setting ends with one line, not a traceback per process.
    """
    a = entry_args(description, data_name)
    try:
        for k, record in enumerate(read_jsonl(a.data, record_cls), 1):
            if check:
                check(record, f"{a.data} record {k}")
        fit(build, resolve_model(a.model), Path(a.data), Path(a.out), read_settings(a.settings, settings_cls))
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None


def build_trainer(trainer_cls: type, config_cls: type, s: TrainSettings, model_dir: Path, data_file: Path,
                  out_dir: Path, to_row: Callable[[dict], dict], **options: Any):
    """(trainer, tokenizer): a TRL `trainer_cls` over the records in `data_file`, each made a TRL row by `to_row`.

    The settings both trainers share become `config_cls` arguments here;
    `options` are the trainer's own (DPO's beta and loss, SFT's masking).
    """
    model, tokenizer = load_for_training(model_dir)
    args = config_cls(
        output_dir=str(work_dir(out_dir) / "trainer"), learning_rate=s.lr, num_train_epochs=s.epochs,
        per_device_train_batch_size=s.batch_size, gradient_accumulation_steps=s.grad_accum, max_length=s.max_length,
        **options, **schedule_args(s), **machine_args(s.seed),
    )
    rows = load_rows(data_file, out_dir)
    dataset = rows.map(to_row, remove_columns=rows.column_names)
    trainer = trainer_cls(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=peft_config(s.lora))
    return trainer, tokenizer


def resolve_model(model: str | Path) -> Path:
    """A saved model directory for `model`: a path, or a spar name (tiny-random, the embedded model) saved once."""
    from spar.models import model_dir

    path = model_dir(str(model))
    if not (Path(path) / "config.json").exists():
        raise FileNotFoundError(f"model {model!r} is not a saved directory; training needs one "
                                f"(a path written by save_pretrained, tiny-random or smollm2-135m-instruct)")
    return Path(path)


def machine_args(seed: int) -> dict[str, Any]:
    """TrainingArguments that work where we are.

    No GPU: `use_cpu` and full fp32 (bf16 without a GPU makes the trainer
    refuse to start; fp16 is GPU-only), and no gradient checkpointing: TRL
    turns it on by default to save GPU memory, which costs a second forward
    pass per step, and a model small enough to train on a CPU fits in RAM
    without it. GPU: bf16 when the card supports it, checkpointing kept.
    Checkpointing mid-run is off: a stage is short and reruns from its start,
    and optimizer states would only be disk to clean up.
    """
    import torch

    gpu = torch.cuda.is_available()
    return dict(
        use_cpu=not gpu,
        bf16=gpu and torch.cuda.is_bf16_supported(),
        fp16=False,
        gradient_checkpointing=gpu,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )


def schedule_args(s: TrainSettings) -> dict[str, Any]:
    """TrainingArguments for the learning-rate schedule of the settings (DPOSettings / RFTSettings).

    transformers 5 dropped `warmup_ratio`: a float `warmup_steps` below 1 is
    the ratio of all steps. Older versions still take `warmup_ratio`.
    """
    import dataclasses

    from transformers import TrainingArguments

    args: dict[str, Any] = {"lr_scheduler_type": s.lr_scheduler, "warmup_steps": s.warmup_steps}
    if s.warmup_ratio:
        if "warmup_ratio" in {f.name for f in dataclasses.fields(TrainingArguments)}:
            args["warmup_ratio"] = s.warmup_ratio
        else:
            args["warmup_steps"] = s.warmup_ratio
    return args


def load_for_training(model_dir: Path):
    """(model, tokenizer) in fp32: the trainer's master weights.

    A bf16 checkpoint trained in bf16 would lose updates of the paper's size
    (lr 2e-7 is below bf16's resolution for typical weights); GPUs still
    compute in bf16 through autocast.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return model, tokenizer


def work_dir(out_dir: Path) -> Path:
    """Scratch folder beside a checkpoint: trainer output, the training data file, its cache."""
    return Path(out_dir).parent / f".{Path(out_dir).name}-work"


def save_dir(out_dir: Path) -> Path:
    return Path(out_dir).parent / f".{Path(out_dir).name}-save"


def write_data(out_dir: Path, rows: list[dict]) -> Path:
    """Start a training run: empty the scratch folder and write the training rows (JSONL) into it.

    Done once, before any process starts, so a launch's processes read one file.
    """
    work = work_dir(out_dir)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(save_dir(out_dir), ignore_errors=True)
    work.mkdir(parents=True)
    data = work / "train.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return data


def load_rows(data_file: Path, out_dir: Path):
    """A datasets.Dataset over the JSONL, cached in the scratch folder of `out_dir`.

    File-backed on purpose: TRL caches precomputed reference log-probs next
    to the dataset's cache files, where every process of a launch finds them.
    """
    from datasets import load_dataset

    return load_dataset("json", data_files=str(data_file), split="train",
                        cache_dir=str(work_dir(out_dir) / "cache"))


def peft_config(lora: LoraSettings | dict | None):
    if not lora:
        return None
    from peft import LoraConfig

    lora = lora if isinstance(lora, LoraSettings) else LoraSettings(**lora)
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=list(lora.target_modules), task_type="CAUSAL_LM")


def save_checkpoint(trainer, tokenizer, base_dir: Path, out_dir: Path, metrics: dict) -> Path:
    """Save the trained model as safetensors with its tokenizer and metrics; LoRA merged into the base weights.

    Every process takes part in `save_model` (ZeRO-3 and FSDP gather the
    weights there); the main process then merges adapters if any, writes the
    tokenizer and metrics, drops what is not a model, and renames the folder
    into place (replacing an older checkpoint only now, when the new one is whole).
    """
    out_dir = Path(out_dir)
    staged = save_dir(out_dir)
    if trainer.is_world_process_zero():  # a crashed earlier save must not leave e.g. an adapter behind
        shutil.rmtree(staged, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staged))
    if not trainer.is_world_process_zero():
        return out_dir
    if (staged / "adapter_config.json").exists():  # LoRA: the next iteration generates from a plain model
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
        merged = PeftModel.from_pretrained(base, staged).merge_and_unload()
        shutil.rmtree(staged)
        merged.save_pretrained(staged, safe_serialization=True)
    tokenizer.save_pretrained(staged)
    (staged / "train_metrics.json").write_text(json.dumps(metrics, indent=2))
    for junk in ("training_args.bin", "README.md"):
        (staged / junk).unlink(missing_ok=True)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.rename(staged, out_dir)
    shutil.rmtree(work_dir(out_dir), ignore_errors=True)
    return out_dir


METRICS = ("loss", "rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected",
           "mean_token_accuracy")


def summarize(trainer, started: float, n_examples: int, train_seconds: float) -> dict:
    """train_metrics.json: size, steps, time, the first and last logged step, and means over the run.

    `seconds` is the whole stage (loading, reference pass, training);
    `train_seconds` the optimizer loop alone, the trainer's own timer.
    """
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    keys = [k for k in METRICS if logs and k in logs[0]]
    steps = trainer.state.global_step
    seconds = time.time() - started
    return {
        "examples": n_examples,
        "steps": steps,
        "processes": trainer.args.world_size,
        "seconds": round(seconds, 1),
        "train_seconds": round(train_seconds, 2),
        "first": {k: logs[0][k] for k in keys},
        "last": {k: logs[-1][k] for k in keys},
        "mean": {k: sum(e[k] for e in logs) / len(logs) for k in keys},
    }
