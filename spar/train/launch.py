"""Starting a training stage in several processes through `accelerate launch`.

    launch("spar.train.dpo", data_file, model_dir, out_dir, settings)

runs, in a subprocess,

    accelerate launch --num_processes N [--config_file C] -m spar.train.dpo \
        --data pairs.jsonl --model DIR --out DIR --settings settings.json

Every process loads the model and the data file; the trainer shards the
batches (and with a DeepSpeed ZeRO-3 or FSDP config, the weights). With no
accelerate config the processes are joined torchrun-style: over NCCL on
GPUs, over gloo on a machine without GPUs (the trainer runs with `use_cpu`;
accelerate's own `--cpu` flag would start a single process, since it wants
MPI for several CPU processes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any


def wanted(settings: Any) -> bool:
    """Whether the settings ask for `accelerate launch` rather than training in this process."""
    return settings.num_processes > 1 or bool(settings.accelerate_config)


def launch(module: str, data_file: Path, model_dir: Path, out_dir: Path, settings: Any) -> Path:
    """Run `python -m <module>` under `accelerate launch` with `settings.num_processes` processes."""
    out_dir = Path(out_dir)
    settings_file = out_dir.parent / f".{out_dir.name}-settings.json"
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(asdict(settings)))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(settings.num_processes),
           "--num_machines", "1", "--dynamo_backend", "no"]
    if settings.accelerate_config:
        config = Path(settings.accelerate_config)
        shipped = Path(__file__).resolve().parents[2] / settings.accelerate_config
        if not config.exists() and shipped.exists():  # configs/accelerate/... named from another directory
            config = shipped
        if not config.exists():
            raise FileNotFoundError(f"accelerate_config={settings.accelerate_config!r}: no such file; "
                                    f"give one of configs/accelerate/*.yaml or a file from `accelerate config`")
        # Mixed precision and the distributed backend come from the config file.
        cmd += ["--config_file", str(config)]
    else:
        cmd += ["--multi_gpu", "--mixed_precision", "no"]
    cmd += ["-m", module, "--data", str(data_file), "--model", str(model_dir), "--out", str(out_dir),
            "--settings", str(settings_file)]
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    try:
        result = subprocess.run(cmd, env=env)
    finally:
        settings_file.unlink(missing_ok=True)
    if result.returncode != 0:
        raise RuntimeError(f"training failed (exit {result.returncode}); the processes' errors are printed above. "
                           f"Command: {' '.join(cmd)}")
    if not (out_dir / "config.json").exists():
        raise RuntimeError(f"training exited cleanly but wrote no checkpoint to {out_dir}")
    return out_dir


def entry_args(description: str, data_name: str) -> argparse.Namespace:
    """The command line of a training module's `main` (what `launch` calls)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--data", f"--{data_name}", dest="data", required=True, help=f"{data_name} JSONL file")
    ap.add_argument("--model", required=True, help="model directory (safetensors + tokenizer) or a spar model name")
    ap.add_argument("--out", required=True, help="checkpoint directory to write")
    ap.add_argument("--settings", help="JSON file of the settings (defaults when omitted)")
    return ap.parse_args()


def read_settings(path: str | None, cls):
    return cls(**json.loads(Path(path).read_text())) if path else cls()
