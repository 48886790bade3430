import os
from pathlib import Path

import pytest
import torch

from resonance_lib import data
from resonance_lib.train import Callback

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _offline_data(monkeypatch):
    """Tests read corpora from RESONANCE_DATA_DIR, falling back to ../shared/data beside the checkout."""
    if not os.environ.get("RESONANCE_DATA_DIR") and SHARED_DATA.is_dir():
        monkeypatch.setenv("RESONANCE_DATA_DIR", str(SHARED_DATA))


@pytest.fixture
def tiny_text() -> str:
    return "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 40


@pytest.fixture
def double_precision():
    """Algebraic identities are checked in float64; the default dtype is restored afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No RESONANCE_DATA_DIR and an empty cache, so only what a test supplies can be found."""
    monkeypatch.delenv("RESONANCE_DATA_DIR", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setattr(data, "default_cache_dir", lambda: cache)
    return cache


class PoisonAt(Callback):
    """Writes NaN into the first weight after optimizer step ``step``: a divergence on cue."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, state):
        if state.step == self.step:
            with torch.no_grad():
                next(state.model.parameters()).fill_(float("nan"))


@pytest.fixture
def poison_at():
    """``poison_at(step)``: a callback that makes the run diverge after optimizer step ``step``."""
    return PoisonAt
