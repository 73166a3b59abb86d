"""The vLLM backend: needs vllm and a GPU, skipped elsewhere."""

import importlib.util

import pytest

from spar.backends import SamplingParams, make_backend


def _gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def test_import_spar_does_not_import_heavy_modules():
    import subprocess
    import sys

    code = "import sys, spar, spar.backends, spar.records, spar.cli; print(sorted(m for m in ('torch', 'vllm', 'transformers', 'openai', 'deepspeed') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_missing_vllm_gives_install_hint():
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed")
    with pytest.raises(ImportError, match=r"pip install 'spar-llm\[vllm\]'"):
        make_backend("vllm", "tiny-random")


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None or not _gpu(), reason="needs vllm and a GPU")
def test_vllm_generates_n_samples():
    b = make_backend("vllm", "tiny-random", gpu_memory_utilization=0.3)
    out = b.generate([[{"role": "user", "content": "hi"}]] * 3, SamplingParams(n=2, temperature=1.0, max_new_tokens=8, seed=1))
    assert [len(r) for r in out] == [2, 2, 2]
