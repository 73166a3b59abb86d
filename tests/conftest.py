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



def pytest_configure(config):
    """Models built by tests (tiny-random) go to a fresh cache per session, so a stale one never leaks in;
    an embedded model already converted in the user's cache is linked, not converted again."""
    if "SPAR_CACHE" in os.environ:
        return
    import tempfile

    cache = Path(tempfile.mkdtemp(prefix="spar-test-cache-"))
    (cache / "models").mkdir()
    user = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spar" / "models" / "smollm2-135m-instruct"
    if (user / "config.json").exists():
        (cache / "models" / "smollm2-135m-instruct").symlink_to(user)
    os.environ["SPAR_CACHE"] = str(cache)
