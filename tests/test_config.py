"""Run configs: help on every key, YAML + dotted overrides, errors that name key, value, type and origin."""

import dataclasses
import typing
from pathlib import Path

import pytest

from spar.config import ConfigError, DPOSettings, RunConfig, SearchConfig, describe, dump_config, load_config

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted((REPO / "configs").glob("*.yaml"))


def all_fields(cls, prefix=""):
    for f in dataclasses.fields(cls):
        yield prefix + f.name, f
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            yield from all_fields(tp, f"{prefix}{f.name}.")


def test_every_key_has_a_help_text_and_is_listed():
    listed = "\n".join(describe())
    for key, f in all_fields(RunConfig):
        assert f.metadata.get("help"), f"{key} has no help text"
        assert key in listed


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_presets_load_open_with_their_command_and_round_trip(preset, tmp_path):
    assert preset.read_text().startswith(f"# spar run --config configs/{preset.name}")
    cfg = load_config(preset)
    written = tmp_path / "config.yaml"
    written.write_text(dump_config(cfg))
    assert load_config(written) == cfg  # the resolved config reproduces the run
    for key, _ in all_fields(RunConfig):  # every default written out
        node = __import__("yaml").safe_load(written.read_text())
        for part in key.split("."):
            assert part in node, f"{key} missing from the written config"
            node = node[part] if isinstance(node[part], dict) else {}


def test_paper_preset_holds_the_papers_settings():
    cfg = load_config(REPO / "configs" / "paper-llama3-8b.yaml")
    assert (cfg.sample.k, cfg.sample.temperature, cfg.sample.top_p) == (5, 0.9, 0.9)
    assert (cfg.judge.n, cfg.judge.temperature, cfg.judge.kind) == (5, 0.7, "llm")
    s = cfg.search
    assert (s.strategy, s.branch, s.select, s.max_depth, s.gate) == ("bfs", 3, 2, 3, 0.5)
    d, r = cfg.train.dpo, cfg.train.rft
    assert (d.beta, d.sft_weight, d.lr, d.epochs) == (0.1, 0.1, 2e-7, 1.0)
    assert (r.lr, r.epochs) == (2e-6, 5.0)
    assert cfg.iterations == 3 and cfg.actor.backend == "vllm"
    assert d.num_processes == 8 and d.accelerate_config == "configs/accelerate/zero3.yaml"


def test_dotted_overrides_parse_yaml_values():
    cfg = load_config(None, ["search.branch=2", "search.gate=0.7", "train.dpo.lora={r: 4}", "eval.ifeval_data=null",
                             "data.source=/data/x:y.jsonl", "judge.kind=hybrid", "train.dpo.epochs=2"])
    assert cfg.search.branch == 2 and cfg.search.gate == 0.7
    assert cfg.train.dpo.lora.r == 4 and cfg.train.dpo.lora.alpha == 32
    assert cfg.eval.ifeval_data is None and cfg.data.source == "/data/x:y.jsonl"
    assert cfg.train.dpo.epochs == 2.0 and isinstance(cfg.train.dpo.epochs, float)  # an int is a fine number
    assert cfg.judge.kind == "hybrid"


def test_unknown_key_suggests_the_nearest_and_names_its_line(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("name: x\nsearch:\n  branch: 3\n  gat: 0.5\n")
    with pytest.raises(ConfigError, match=r"run.yaml:4: unknown config key search.gat; did you mean search.gate\?"):
        load_config(f)
    f.write_text("name: x\nsearch:\n  branch: 3\n")
    with pytest.raises(ConfigError, match=r"command line 'search.brnch=2': unknown config key search.brnch; "
                                          r"did you mean search.branch\?"):
        load_config(f, ["search.brnch=2"])
    with pytest.raises(ConfigError, match=r"unknown config key zzz; known keys: name, out_dir"):
        load_config(None, ["zzz=1"])


def test_wrong_type_names_key_value_expected_type_and_origin(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("name: x\nsample:\n  k: five\n")
    with pytest.raises(ConfigError, match=r"run.yaml:3: sample.k='five' should be an integer"):
        load_config(f)
    with pytest.raises(ConfigError, match=r"command line 'judge.n=2.5': judge.n=2.5 should be an integer"):
        load_config(None, ["judge.n=2.5"])
    with pytest.raises(ConfigError, match=r"train.actor='maybe' should be true or false"):
        load_config(None, ["train.actor=maybe"])
    with pytest.raises(ConfigError, match=r"sample.k=True should be an integer"):
        load_config(None, ["sample.k=true"])  # a bool is not a count
    with pytest.raises(ConfigError, match=r"target_modules\[\]=1 should be a string"):
        load_config(None, ["train.rft.lora={target_modules: [1]}"])
    with pytest.raises(ConfigError, match=r"search must be a mapping"):
        load_config(None, ["search=3"])


def test_bad_values_say_how_to_fix_them(tmp_path):
    cases = {
        "judge.kind=majority": r"judge.kind='majority': choose llm, verifier or hybrid",
        "search.strategy=mcts": r"search.strategy='mcts': choose bfs or dfs",
        "search.gate=1.5": r"search.gate=1.5: must be in \[0, 1\)",
        "sample.top_p=0": r"sample.top_p=0.0: must be in \(0, 1\]",
        "data.heldout=1": r"data.heldout=1.0: must be in \[0, 1\)",
        "refiner.backend=tgi": r"refiner.backend='tgi': choose hf, vllm or openai",
        "train.dpo.beta=0": r"train.dpo.beta=0.0: must be > 0",
        "train.rft.lora={r: 0}": r"train.rft.lora.r=0: must be >= 1",
        "name=a/b": r"name='a/b': must be a plain folder name",
        "iterations=0": r"iterations=0: must be >= 1",
    }
    for override, message in cases.items():
        with pytest.raises(ConfigError, match=f"command line '{override.split('=')[0]}.*{message}"):
            load_config(None, [override])
    f = tmp_path / "run.yaml"
    f.write_text("name: x\n\nsearch:\n  strategy: bfs\n  branch: 0\n")
    with pytest.raises(ConfigError, match=r"run.yaml:5: search.branch=0: must be >= 1"):
        load_config(f)


def test_malformed_files_and_overrides(tmp_path):
    with pytest.raises(FileNotFoundError, match="presets live in configs/"):
        load_config(tmp_path / "nope.yaml")
    f = tmp_path / "run.yaml"
    f.write_text("name: x\nsearch: [\n")
    with pytest.raises(ConfigError, match=r"run.yaml:\d+: not valid YAML"):
        load_config(f)
    f.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(f)
    with pytest.raises(ConfigError, match="write it as dotted.key=value"):
        load_config(None, ["search.branch"])
    with pytest.raises(ConfigError, match="name is a value, not a section"):
        load_config(None, ["name=x", "name.sub=1"])


def test_settings_validate_when_built_directly():
    """Trainers and the search build their settings from JSON/kwargs: the same checks apply there."""
    with pytest.raises(ValueError, match="train.dpo.lr=0"):
        DPOSettings(lr=0)
    with pytest.raises(ValueError, match="search.select=0"):
        SearchConfig(select=0)
    assert DPOSettings(lora={"r": 2}).lora.r == 2
