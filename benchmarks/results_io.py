"""What every benchmark records beside its numbers, and where it writes them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from resonance_lib.provenance import device_name, git_commit

RESULTS = Path(__file__).resolve().parent / "results"


def write_result(name: str, device: torch.device | None, body: dict, out: Path | None, default_file: str) -> Path:
    """Write ``{"benchmark", "device", "torch", "commit", "date", "load_average_at_end", **body}`` as JSON to ``out`` (default:
    benchmarks/results/<default_file>) and say where."""
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None  # other work on the machine
    result = {"benchmark": name, "device": device_name(device) if device is not None else None,
              "torch": torch.__version__, "commit": git_commit(), "date": time.strftime("%Y-%m-%d"),
              "load_average_at_end": load, **body}
    out = out or RESULTS / default_file
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return out
