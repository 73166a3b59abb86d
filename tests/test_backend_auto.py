"""`backend: auto` (the CPU presets' engine): vllm where vLLM is installed, else hf, everywhere a backend is built."""

import importlib.util

import pytest

from spar.backends import check_options, make_backend, resolve
from spar.config import load_config
from spar.errors import UserError


@pytest.fixture
def vllm_installed(monkeypatch):
    """Pretend vLLM is (True) or is not (False) installed, whatever this environment has."""
    real = importlib.util.find_spec

    def set_to(present: bool):
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: (object() if present else None) if name == "vllm" else real(name, *a))

    return set_to


def test_auto_is_vllm_where_installed_else_hf(vllm_installed):
    vllm_installed(True)
    assert resolve("auto") == "vllm"
    vllm_installed(False)
    assert resolve("auto") == "hf"
    assert [resolve(k) for k in ("hf", "vllm", "openai", "scripted")] == ["hf", "vllm", "openai", "scripted"]


def test_auto_without_vllm_builds_the_hf_backend_with_its_options(vllm_installed):
    vllm_installed(False)
    backend = make_backend("auto", "tiny-random", batch_size=3)
    try:
        assert type(backend).__name__ == "HFBackend" and backend.batch_size == 3
    finally:
        backend.close()
    with pytest.raises(UserError, match=r"the auto \(here: hf\) backend has no option 'tensor_parallel_size'"):
        check_options("auto", {"tensor_parallel_size": 2}, "actor.options")


def test_the_loop_keys_an_auto_engine_by_what_it_resolves_to(vllm_installed, tmp_path):
    from spar.selfplay.loop import Loop

    cfg = load_config(None, [f"out_dir={tmp_path}", "actor.backend=auto", "refiner.backend=auto", "actor.batch_size=5",
                             "actor.name=tiny-random", "refiner.name=tiny-random"])
    loop = Loop(cfg)
    vllm_installed(False)
    assert loop._key("actor", "tiny-random") == ("hf", "tiny-random", '{"batch_size": 5}')
    vllm_installed(True)
    assert loop._key("actor", "tiny-random") == ("vllm", "tiny-random", "{}")


def test_config_accepts_auto_and_names_the_choices():
    assert load_config(None, ["actor.backend=auto"]).actor.backend == "auto"
    with pytest.raises(Exception, match="choose auto, hf, vllm or openai"):
        load_config(None, ["actor.backend=vlm"])


def test_the_cpu_presets_run_on_the_fastest_installed_engine():
    for name in ("cpu-smollm2", "cpu-quality"):
        cfg = load_config(f"configs/{name}.yaml", [])
        assert (cfg.actor.backend, cfg.refiner.backend) == ("auto", "auto"), name
