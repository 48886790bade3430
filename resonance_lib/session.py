"""One call that sets a notebook up: ``run = start(PROFILE, SEEDS, DEVICE, FIG_DIR, DATA_DIR)``.

It resolves what every notebook needs and used to repeat in its first cells: the profile's seeds, the device,
the stamp (profile, device, seeds, commit) that every figure and table carries, the figure directory — the
repository's ``figures/`` wherever the notebook runs from (JupyterLab, papermill, a Colab clone) unless one is
given — the corpus directories, and the model size of the profile's baby language model. Inside a Jupyter
kernel it also makes figures show inline (even when ``MPLBACKEND=Agg`` is set for headless runs), so every
figure ``save_figure`` writes is also shown where it is made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .data import PACKAGE_ROOT
from .plots import Stamp
from .profiles import check_profile, pick
from .provenance import device_name, git_commit
from .train import resolve_device


def default_cache_dir(profile: str) -> Path:
    """Where finished runs of ``profile`` are cached (``run_grid(cache_dir=...)``): ``<root>/<profile>`` with
    root ``RESONANCE_CACHE_DIR`` if set, else runs/ in a source checkout, else ~/.cache/resonance_lib/runs.

    In a checkout, the histories of the committed profiles (``runs/full``, ``runs/gpu``) are committed beside the
    results they produced, so a long profile resumes in a fresh clone and its tables can be rebuilt; the weights
    (``state.pt``) and the ``smoke`` and ``quick`` folders are git-ignored."""
    if os.environ.get("RESONANCE_CACHE_DIR"):
        root = Path(os.environ["RESONANCE_CACHE_DIR"]).expanduser()
    elif (PACKAGE_ROOT / "pyproject.toml").exists():
        root = PACKAGE_ROOT / "runs"
    else:
        root = Path.home() / ".cache" / "resonance_lib" / "runs"
    return root / check_profile(profile)


def default_fig_dir() -> Path:
    """The repository's figures/ in a source checkout (also an editable install, as in Colab); else ./figures."""
    if (PACKAGE_ROOT / "pyproject.toml").exists():
        return PACKAGE_ROOT / "figures"
    return Path.cwd() / "figures"


# The character-level "baby" GPT that notebooks 01–05 share, per profile (nanoGPT's CPU shakespeare_char run;
# its GPU config in the gpu profile).
LM_SIZES = {
    "smoke": dict(n_layer=2, n_head=2, n_embd=32, block_size=32),
    "quick": dict(n_layer=4, n_head=4, n_embd=64, block_size=64),  # narrower: all five notebooks in ~30 min
    "full": dict(n_layer=4, n_head=4, n_embd=128, block_size=64),
    "gpu": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2),
}


@dataclass(frozen=True)
class Session:
    """What a notebook run is: its profile, seeds, device, stamp, figure directory and corpus directories."""

    profile: str
    seeds: tuple[int, ...]
    device: torch.device
    stamp: Stamp
    fig_dir: Path
    data_dirs: list[str] | None
    cache_dir: Path | None = None  # finished runs, for run_grid(cache_dir=...); None: default_cache_dir(profile)

    def __post_init__(self):
        if self.cache_dir is None:
            object.__setattr__(self, "cache_dir", default_cache_dir(self.profile))

    def pick(self, **by_profile):
        """The value for this profile: ``run.pick(smoke=20, quick=500, gpu=5000)``."""
        return pick(self.profile, **by_profile)

    @property
    def compile(self) -> bool:
        """Whether training compiles the model (``TrainConfig.compile``): on in the ``gpu`` profile, where
        ``torch.compile`` pays for itself; off elsewhere (on a CPU it slows the delta state down, and its
        compile time would dominate the short ``smoke`` and ``quick`` runs)."""
        return self.profile == "gpu"

    @property
    def lm_size(self) -> dict:
        """The shared baby language model's size (n_layer, n_head, n_embd, block_size[, dropout])."""
        return dict(LM_SIZES[self.profile])


def in_kernel() -> bool:
    """True inside a Jupyter kernel (JupyterLab, papermill, Colab), False in a plain Python process."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def start(profile: str, seeds=None, device: str = "auto", fig_dir: str | Path | None = None,
          data_dir: str | Path | None = None) -> Session:
    """Set a notebook up. ``seeds`` None: the profile's seeds; ``fig_dir`` None: the repository's figures/;
    ``data_dir`` None: ``RESONANCE_DATA_DIR``, then data/, then download."""
    check_profile(profile)
    seeds = tuple(seeds) if seeds else tuple(pick(profile, smoke=[0, 1], quick=[0, 1, 2], gpu=[0, 1, 2, 3, 4, 5],
                                                  full=[0, 1, 2, 3, 4, 5]))
    resolved = resolve_device(device)
    fig_dir = Path(fig_dir).expanduser().resolve() if fig_dir is not None else default_fig_dir()
    fig_dir.mkdir(parents=True, exist_ok=True)
    if in_kernel():
        import matplotlib

        matplotlib.use("module://matplotlib_inline.backend_inline")
    stamp = Stamp(profile, device_name(resolved), seeds, git_commit())
    session = Session(profile, seeds, resolved, stamp, fig_dir, [str(data_dir)] if data_dir else None)
    print(f"{stamp} · figures → {display_path(fig_dir)}")
    return session


def display_path(path: Path) -> str:
    """``path`` as a reader should see it: relative to the repository when inside it, never a machine path."""
    try:
        return str(Path(path).resolve().relative_to(PACKAGE_ROOT))
    except ValueError:
        return Path(path).name
