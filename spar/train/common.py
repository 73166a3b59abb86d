"""What the DPO and RFT trainers share: settings for the machine, LoRA, atomic checkpoints, launching.

Training always reads a model from a directory (TRL reloads the reference
model from the policy's path) and writes a new directory: safetensors plus
tokenizer, renamed into place only when complete. `launch` runs a training
entry point in-process, or through `accelerate launch` when more than one
process or an accelerate/DeepSpeed config is asked for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from spar.config import LoraSettings


def machine_args(seed: int) -> dict[str, Any]:
    """TrainingArguments that work where we are: CPU without bf16, or GPU with bf16 when supported."""
    import torch

    gpu = torch.cuda.is_available()
    return dict(
        use_cpu=not gpu,
        bf16=gpu and torch.cuda.is_bf16_supported(),
        fp16=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )


def work_dir(out_dir: Path) -> Path:
    """Scratch folder beside a checkpoint: trainer output, the training data file, its cache."""
    return Path(out_dir).parent / f".{Path(out_dir).name}-work"


def fresh_work_dir(out_dir: Path) -> Path:
    """Emptied before a training run starts (never inside it: launched processes share it)."""
    work = work_dir(out_dir)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(Path(out_dir).parent / f".{Path(out_dir).name}-save", ignore_errors=True)
    return work


def dataset_in(work_dir: str, rows: list[dict]):
    """A datasets.Dataset backed by files in `work_dir`, so every process of a launch shares its cache."""
    from datasets import load_dataset

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "train.jsonl"
    if not data.exists():  # written once; with several processes the first one writes it
        tmp = work / f"train.jsonl.{os.getpid()}"
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        os.replace(tmp, data)
    return load_dataset("json", data_files=str(data), split="train", cache_dir=str(work / "cache"))


def peft_config(lora: LoraSettings | dict | None):
    if not lora:
        return None
    from peft import LoraConfig

    lora = lora if isinstance(lora, LoraSettings) else LoraSettings(**lora)
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules,
                      task_type="CAUSAL_LM")


def save_checkpoint(trainer, tokenizer, base_dir: Path, out_dir: Path, metrics: dict) -> Path:
    """Save the trained model as safetensors with its tokenizer, LoRA merged into `base_dir`'s weights.

    Every process takes part in `save_model` (ZeRO-3 and FSDP gather the
    weights there); the main process then merges adapters if any, writes the
    tokenizer and metrics, and renames the folder into place.
    """
    out_dir = Path(out_dir)
    staged = out_dir.parent / f".{out_dir.name}-save"
    trainer.save_model(str(staged))
    if not trainer.is_world_process_zero():
        return out_dir
    if (staged / "adapter_config.json").exists():  # LoRA: the next iteration generates from a plain model
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), staged).merge_and_unload()
        shutil.rmtree(staged)
        merged.save_pretrained(staged, safe_serialization=True)
    tokenizer.save_pretrained(staged)
    (staged / "train_metrics.json").write_text(json.dumps(metrics, indent=2))
    for junk in ("training_args.bin",):
        (staged / junk).unlink(missing_ok=True)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.rename(staged, out_dir)
    shutil.rmtree(work_dir(out_dir), ignore_errors=True)
    return out_dir


def summarize(trainer, started: float, n_examples: int) -> dict:
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    keep = ("loss", "rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected")
    return {
        "examples": n_examples,
        "steps": trainer.state.global_step,
        "seconds": round(time.time() - started, 1),
        "first": {k: logs[0][k] for k in keep if logs and k in logs[0]},
        "last": {k: logs[-1][k] for k in keep if logs and k in logs[-1]},
    }


def launch(module: str, data: Path, model_path: Path, out_dir: Path, settings: Any, num_processes: int = 1,
           accelerate_config: str | None = None) -> Path:
    """Run `python -m <module>` through `accelerate launch` (multi-process / DeepSpeed / FSDP)."""
    settings_file = Path(out_dir).parent / f".{Path(out_dir).name}-settings.json"
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(asdict(settings)))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes)]
    if accelerate_config:
        cmd += ["--config_file", accelerate_config]
    elif num_processes > 1:
        # torchrun-style launch; on a machine without GPUs the trainer runs with use_cpu
        # and accelerate joins the processes over gloo (its `--cpu` flag would start only one).
        cmd += ["--multi_gpu"]
    cmd += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "-m", module, "--data", str(data), "--model", str(model_path), "--out", str(out_dir),
            "--settings", str(settings_file)]
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    result = subprocess.run(cmd, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"training failed (exit {result.returncode}): {' '.join(cmd)}")
    settings_file.unlink(missing_ok=True)
    return Path(out_dir)
