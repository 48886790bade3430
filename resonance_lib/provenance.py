"""Where a result came from: the commit of the code and the device that produced it, stamped on every
run, table, figure and benchmark."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import torch

# the checkout this library is in (an editable install): its commit is the code's, whatever the working directory
CHECKOUT = Path(__file__).resolve().parent.parent


def git_commit(checkout: str | Path = CHECKOUT) -> str:
    """The commit (short hash) of the checkout the library lives in, with ``+dirty`` if its code (library,
    benchmarks, packaging) has uncommitted changes — notebooks executed in place and regenerated figures do not
    count — or ``unknown`` outside a git checkout. Asked of ``checkout`` whatever the working directory: a
    notebook's kernel runs in ``notebooks/``, where paths relative to it would name nothing.
    ``RESONANCE_COMMIT`` overrides it, for a copy of the tree without its ``.git`` (e.g. sent to a GPU box)."""
    if os.environ.get("RESONANCE_COMMIT"):
        return os.environ["RESONANCE_COMMIT"]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True, cwd=checkout).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "resonance_lib",
                                "benchmarks", "pyproject.toml", "requirements.txt"], capture_output=True,
                               text=True, check=True, cwd=checkout).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``), or ``unknown``: two CPUs may round
    the same float computation differently (their vector units take other paths through the math libraries)."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({torch.get_num_threads()} threads)"
