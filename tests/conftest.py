import os
from pathlib import Path

import pytest
import torch

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
