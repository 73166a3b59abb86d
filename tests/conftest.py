import os
from pathlib import Path

import pytest

# Tests never reach a model hub: everything they load is made locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def ifeval_sample() -> Path:
    """14 real IFEval rows (evaluation data: format tests only, never training)."""
    path = SHARED_DATA / "ifeval_sample.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found (it sits in ../shared/data beside the checkout)")
    return path

