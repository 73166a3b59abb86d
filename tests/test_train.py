"""DPO and RFT over TRL on the tiny model: they learn, mask, merge LoRA, and run in 2 processes."""

import json

import pytest
import torch
from safetensors.torch import load_file

from spar.models import model_dir
from spar.records import Pair, RFTExample, write_jsonl
from spar.train.dpo import DPOSettings, train_dpo
from spar.train.rft import RFTSettings, build_trainer, train_rft

PAIRS = [Pair(f"i{k}", [{"role": "user", "content": f"Name a color {k}"}], "blue and green", "blue, green") for k in range(4)]
RFT = [RFTExample([{"role": "user", "content": "Judge this please"}, {"role": "assistant", "content": "Verdict: Yes"}], "judge")] * 4


def weights(path):
    return load_file(str(path / "model.safetensors"))


def changed(a, b):
    return any(not torch.equal(a[k], b[k]) for k in a if k in b)


def test_dpo_learns_the_preference(tmp_path):
    src = model_dir("tiny-random")
    out = train_dpo(src, PAIRS, tmp_path / "actor", DPOSettings(lr=1e-2, epochs=3, batch_size=2))
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["steps"] == 6
    assert metrics["last"]["rewards/margins"] > metrics["first"]["rewards/margins"]
    assert changed(weights(src), weights(out))
    assert not (tmp_path / ".actor-work").exists()


def test_rft_loss_only_on_the_refiners_turn(tmp_path):
    trainer, tok = build_trainer(model_dir("tiny-random"), RFT[:1], tmp_path / "r", RFTSettings())
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labels = batch["labels"][0]
    kept = tok.decode(labels[labels != -100])
    assert kept.startswith("Verdict: Yes") and "Judge this" not in kept


def test_rft_lowers_its_loss(tmp_path):
    out = train_rft(model_dir("tiny-random"), RFT, tmp_path / "refiner", RFTSettings(lr=1e-2, epochs=3))
    m = json.loads((out / "train_metrics.json").read_text())
    assert m["last"]["loss"] < m["first"]["loss"]


def test_rft_rejects_examples_not_ending_with_the_refiner():
    with pytest.raises(ValueError, match="must end with the refiner"):
        train_rft(model_dir("tiny-random"), [RFTExample([{"role": "user", "content": "x"}], "judge")], "/tmp/x", RFTSettings())


def test_lora_is_merged_before_saving(tmp_path):
    src = model_dir("tiny-random")
    s = DPOSettings(lr=5e-2, epochs=1, batch_size=2, lora={"r": 4, "alpha": 8, "dropout": 0.0})
    out = train_dpo(src, PAIRS, tmp_path / "actor", s)
    assert not (out / "adapter_config.json").exists()
    w = weights(out)
    assert not any("lora" in k for k in w) and changed(weights(src), w)


def test_dpo_in_two_processes_over_gloo(tmp_path):
    data = tmp_path / "pairs.jsonl"
    write_jsonl(data, PAIRS)
    src = model_dir("tiny-random")
    out = train_dpo(src, PAIRS, tmp_path / "actor", DPOSettings(lr=1e-2, batch_size=1, num_processes=2), data_file=data)
    m = json.loads((out / "train_metrics.json").read_text())
    assert m["steps"] == 2  # 4 pairs, batch 1 per process, 2 processes
    assert changed(weights(src), weights(out))


def test_empty_data_is_refused():
    with pytest.raises(ValueError, match="at least one preference pair"):
        train_dpo("x", [], "y", DPOSettings())
