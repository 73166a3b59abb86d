"""DPO and RFT over TRL on the tiny model: they learn the right thing, mask, merge LoRA, save whole, run in 2 processes.

Effects are measured on the saved checkpoints with a plain forward pass
(log-probs of the answers), not read back from the trainer's logs.
"""

import json
import shutil
import time

import pytest
import torch
from safetensors.torch import load_file

from spar.config import DPOSettings, RFTSettings
from spar.models import model_dir
from spar.records import Pair, RFTExample, write_jsonl
from spar.train.dpo import build_dpo_trainer, precompute_ref, train_dpo
from spar.train.rft import build_rft_trainer, train_rft

PAIRS = [Pair(f"i{k}", [{"role": "user", "content": f"Name two colors ({k})"}], "blue and green", "blue, green")
         for k in range(4)]
JUDGE = [{"role": "system", "content": "You judge answers."}, {"role": "user", "content": "Judge this please"}]
RFT = [RFTExample(JUDGE + [{"role": "assistant", "content": "Verdict: Yes"}], "judge")] * 4


def weights(path):
    return load_file(str(path / "model.safetensors"))


def changed(a, b):
    return any(not torch.equal(a[k], b[k]) for k in a if k in b)


def answer_logprob(path, prompt, answer):
    """Summed log-prob of the assistant turn `answer` (with its end token) after the chat `prompt`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    head = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template(prompt + [{"role": "assistant", "content": answer}], tokenize=False)
    assert full.startswith(head)
    ids = tok(full, return_tensors="pt", add_special_tokens=False).input_ids
    start = len(tok(head, add_special_tokens=False).input_ids)
    with torch.no_grad():
        logp = model(ids).logits[0, :-1].log_softmax(-1)
    target = ids[0, 1:]
    return logp[start - 1:].gather(-1, target[start - 1:, None]).sum().item()


def preference(path):
    return sum(answer_logprob(path, p.prompt, p.chosen) - answer_logprob(path, p.prompt, p.rejected) for p in PAIRS)


@pytest.fixture(scope="module")
def tiny():
    return model_dir("tiny-random")


def test_dpo_moves_the_margin_towards_chosen(tiny, tmp_path):
    out = train_dpo("tiny-random", PAIRS, tmp_path / "actor", DPOSettings(lr=1e-3, epochs=2, batch_size=2))
    assert preference(out) > preference(tiny) + 1.0
    assert changed(weights(tiny), weights(out))
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["processes"] == 1 and metrics["examples"] == 4
    assert metrics["last"]["rewards/margins"] > 0 and "rewards/accuracies" in metrics["mean"]
    # a whole checkpoint and nothing else: no optimizer state, no scratch or staging folders beside it
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "train_metrics.json"} <= names
    assert not any("optimizer" in n or n.startswith("checkpoint-") or n.endswith(".bin") for n in names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["actor"]


def test_dpo_uses_the_papers_loss(tiny, tmp_path):
    """The SFT term on chosen is TRL's "sft" loss with its weight; weight 0 is plain DPO; no bf16 on CPU."""
    data = tmp_path / "pairs.jsonl"
    write_jsonl(data, PAIRS)
    trainer, _ = build_dpo_trainer(tiny, data, tmp_path / "a", DPOSettings())
    assert trainer.args.loss_type == ["sigmoid", "sft"] and trainer.args.loss_weights == [1.0, 0.1]
    assert trainer.args.beta == 0.1 and trainer.args.learning_rate == 2e-7 and trainer.args.precompute_ref_log_probs
    if not torch.cuda.is_available():
        assert trainer.args.use_cpu and not trainer.args.bf16 and not trainer.args.fp16
    trainer, _ = build_dpo_trainer(tiny, data, tmp_path / "b", DPOSettings(sft_weight=0))
    assert trainer.args.loss_type == ["sigmoid"]
    if not torch.cuda.is_available():  # TRL's default checkpointing costs a second forward; a CPU has the RAM
        assert not trainer.args.gradient_checkpointing


def test_reference_log_probs_precomputed_when_it_pays():
    assert precompute_ref(DPOSettings(precompute_ref_log_probs="auto", epochs=2))
    assert not precompute_ref(DPOSettings(precompute_ref_log_probs="auto", epochs=1))
    assert precompute_ref(DPOSettings(precompute_ref_log_probs=True, epochs=1))
    with pytest.raises(ValueError, match="precompute_ref_log_probs='sometimes'"):
        precompute_ref(DPOSettings(precompute_ref_log_probs="sometimes"))


def test_rft_loss_only_on_the_refiners_last_turn(tiny, tmp_path):
    """System, user and an earlier assistant turn (the critique a refine chat acts on) are all masked."""
    refine = RFTExample([{"role": "user", "content": "Judge: is it ok?"},
                         {"role": "assistant", "content": "No, too long."},
                         {"role": "user", "content": "Rewrite it."},
                         {"role": "assistant", "content": "Short now."}], "refine")
    data = tmp_path / "rft.jsonl"
    write_jsonl(data, [RFT[0], refine])
    trainer, tok = build_rft_trainer(tiny, data, tmp_path / "r", RFTSettings())
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    kept = [tok.decode(row[row != -100]) for row in batch["labels"]]
    assert kept == ["Verdict: Yes<|im_end|>\n", "Short now.<|im_end|>\n"]
    # and the mask is not empty by accident: inputs hold the whole chat
    assert "Judge this please" in tok.decode(batch["input_ids"][0]) and "too long" in tok.decode(batch["input_ids"][1])


def test_rft_lowers_the_loss_on_its_data(tiny, tmp_path):
    out = train_rft("tiny-random", RFT, tmp_path / "refiner", RFTSettings(lr=1e-3, epochs=2))
    before = answer_logprob(tiny, JUDGE, "Verdict: Yes")
    after = answer_logprob(out, JUDGE, "Verdict: Yes")
    assert after > before + 1.0
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["steps"] == 4 and "loss" in metrics["last"]


def test_lora_is_merged_before_saving(tiny, tmp_path):
    s = DPOSettings(lr=1e-2, epochs=1, batch_size=2, lora={"r": 4, "alpha": 8, "dropout": 0.0})
    out = train_dpo(tiny, PAIRS, tmp_path / "actor", s)
    assert not (out / "adapter_config.json").exists() and not (out / "adapter_model.safetensors").exists()
    w, base = weights(out), weights(tiny)
    assert set(w) == set(base)  # a plain model: the same tensors, no lora_A/lora_B
    assert changed(base, w) and preference(out) > preference(tiny)


def test_a_new_checkpoint_replaces_the_old_one_whole(tiny, tmp_path):
    out = tmp_path / "actor"
    shutil.copytree(tiny, out)
    (out / "stale.txt").write_text("from an older run")
    train_dpo(tiny, PAIRS[:2], out, DPOSettings(lr=1e-3, batch_size=2))
    assert not (out / "stale.txt").exists() and changed(weights(tiny), weights(out))


def test_bad_input_is_refused_before_a_model_loads(tmp_path):
    with pytest.raises(ValueError, match="at least one preference pair"):
        train_dpo("tiny-random", [], tmp_path / "a", DPOSettings())
    with pytest.raises(ValueError, match=r"RFT example 1: .*ending with the refiner's \(assistant\) turn"):
        train_rft("tiny-random", [RFT[0], RFTExample([{"role": "user", "content": "x"}], "judge")], tmp_path / "r",
                  RFTSettings())
    with pytest.raises(FileNotFoundError, match="no config.json"):
        train_dpo(tmp_path, PAIRS, tmp_path / "a", DPOSettings())
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_dpo_in_two_processes_over_gloo(tiny, tmp_path):
    """`accelerate launch --num_processes 2` on CPU: the batches are split over two processes joined by gloo."""
    started = time.time()
    out = train_dpo(tiny, PAIRS, tmp_path / "actor", DPOSettings(lr=1e-3, epochs=2, batch_size=1, num_processes=2))
    m = json.loads((out / "train_metrics.json").read_text())
    assert m["processes"] == 2
    assert m["steps"] == 4  # 4 pairs x 2 epochs, batch 1 per process, 2 processes
    assert changed(weights(tiny), weights(out)) and preference(out) > preference(tiny)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["actor"]
    print(f"2-process DPO: {time.time() - started:.1f}s")
