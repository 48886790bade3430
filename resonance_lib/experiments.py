"""Grids of (variant × seed) training runs as one tidy DataFrame, and their summary with 95% intervals.

Every run of a grid sees the same data, the same steps and the same eval batches; seed ``s`` sets both
the model initialisation and the batch order, so variants are compared *paired by seed*.
"""

from __future__ import annotations

import ast
import concurrent.futures as cf
import dataclasses
import hashlib
import inspect
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .equivalent_code import RESULT_EQUIVALENT_CODE
from .model import ModelBuilder, ResonanceConfig, ResonanceLM, config_params, count_params, match_params
from .provenance import device_name, git_commit
from .sparsity import sparsify
from .stats import LM_MARGIN, decide, t_interval
from .train import (
    Callback,
    NonFiniteLossError,
    TrainConfig,
    evaluate_examples,
    evaluate_split,
    resolve_device,
    stream_seed,
    train,
)


@dataclass
class Variant:
    """One arm of an experiment: a model config, optional callbacks, optional TrainConfig overrides.

    ``callbacks(model, train_config)`` makes fresh callbacks for every run (e.g. a sparsifier attached to
    that run's model)."""

    name: str
    config: ResonanceConfig
    callbacks: Callable[[torch.nn.Module, TrainConfig], Sequence[Callback]] = lambda model, cfg: ()
    train_overrides: dict = field(default_factory=dict)


# Every component as a named set of ResonanceConfig switches: the one list the notebooks' ablations and
# the benchmarks draw from. Each issue that lands a component adds its entries here.
SWITCHES: dict[str, dict] = {
    "delta_dv1": {"residual": "delta", "delta_value_dim": 1},
    "delta_dv4": {"residual": "delta", "delta_value_dim": 4},
    "write_dv1": {"residual": "write", "delta_value_dim": 1},  # controls: the delta rule without its erase term
    "write_dv4": {"residual": "write", "delta_value_dim": 4},
    "phase_random": {"embedding": "phase", "attention": "phase", "phase_init": "random"},
    "phase_phonetic": {"embedding": "phase", "attention": "phase", "phase_init": "phonetic"},  # word vocabularies
    "prime_encoder": {"encoder": "prime"},
    "halting_attention": {"attention": "halting"},
    "memory": {"memory": True},
    "premanifest_head": {"head": "premanifest"},
    "prime_ffn_mask": {"ffn_mask": "prime"},
    "prime_all": {"encoder": "prime", "attention": "halting", "memory": True, "head": "premanifest",
                  "ffn_mask": "prime"},
}
# Sparse variants keep the baseline's architecture (same dense parameter count) and add a sparsifier.
SPARSE: dict[str, dict] = {
    "sparse_static": {"strategy": "static"},
    "sparse_gmp": {"strategy": "gmp"},
    "sparse_set": {"strategy": "set"},
    "sparse_rigl": {"strategy": "rigl"},
    "sparse_resonance": {"strategy": "resonance"},
    "sparse_resonance_all": {"strategy": "resonance", "wave_amplitude": 0.5, "twist_mode": True,
                             "etch_memory": True, "curvature_exponent": 2.0},
}


# Every component at once. The attention switch takes one value, so this uses phase attention (random phases:
# they work with any vocabulary) and leaves out halting attention; the delta residual uses d_v = 1.
COMBINED: dict[str, tuple[dict, dict]] = {
    "everything": ({"residual": "delta", "delta_value_dim": 1, "embedding": "phase", "attention": "phase",
                    "phase_init": "random",
                    "encoder": "prime", "memory": True, "head": "premanifest", "ffn_mask": "prime"},
                   SPARSE["sparse_resonance"]),
}


# Controls. ``dense_small``: a dense model with as many usable weights as a 73%-sparse arm has nonzero ones
# (Zhu & Gupta 2017's comparison), sized by match_params (narrower layers where the FFN alone cannot shrink
# enough: the only arm whose width may change, noted here).
CONTROLS = ("dense_small",)


def prunable_weights(config: ResonanceConfig, model: ModelBuilder | None = None) -> int:
    """Entries of the weights a sparsifier prunes by default (the blocks' 2-D weights) of ``model(config)``
    (default ``ResonanceLM``)."""
    with torch.device("meta"):
        built = (model or ResonanceLM)(config)
    return sum(p.numel() for n, p in built.named_parameters() if p.dim() == 2 and n.startswith("blocks."))


def usable_params(config: ResonanceConfig, sparsity: float = 0.0, model: ModelBuilder | None = None) -> int:
    """The one counting convention of the protocol: weights the model can use — trainable, not held at zero by
    a fixed structural mask (``count_params``), and not pruned: at ``sparsity`` of the prunable weights zero,
    ``config_params − round(sparsity · prunable_weights)``."""
    return config_params(config, model) - round(sparsity * prunable_weights(config, model))


def sparse_callbacks(changes: dict, ramp_fraction: float = 0.5, updates: int = 40):
    """A callbacks factory for ``Variant``: a sparsifier whose schedule scales with the run's length
    (the ramp ends at ``ramp_fraction`` of the steps; about ``updates`` mask updates in all)."""

    if "seed" in changes:
        raise ValueError(f"seed={changes['seed']!r} in the sparsity changes: the mask stream follows each run's "
                         "seed (stream_seed(seed, 'sparsity')), so seeds of one arm differ; leave seed out")

    def make(model, cfg: TrainConfig):
        return [sparsify(model, end_step=int(ramp_fraction * cfg.max_iters),
                         update_interval=max(1, cfg.max_iters // updates),
                         seed=stream_seed(cfg.seed, "sparsity"), **changes)]

    return make


def matched_variants(base: ResonanceConfig, names: Sequence[str], tolerance: float = 0.02,
                     model: ModelBuilder | None = None) -> list[Variant]:
    """``baseline`` (= ``base``) and each named component: a config switch from ``SWITCHES``, resized with
    ``match_params`` to within ``tolerance`` of the baseline's parameter count, a sparsifier from ``SPARSE``,
    or both (``COMBINED``), or a control (``CONTROLS``). Parameters are counted on ``model(config)`` (default
    ``ResonanceLM``; e.g. ``partial(PatchClassifier, patch_dim=16)``)."""
    allowed = [*SWITCHES, *SPARSE, *COMBINED, *CONTROLS]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"unknown components {unknown}; allowed: {sorted(allowed)}")
    target = config_params(base, model)
    variants = [Variant("baseline", base)]
    for name in names:
        if name == "dense_small":
            target_sparsity = SPARSE["sparse_resonance"].get("target_sparsity", 0.73)
            small = match_params(base, usable_params(base, target_sparsity, model), tolerance, model)
            variants.append(Variant(name, small))
            continue
        switches, sparsity = COMBINED.get(name, (SWITCHES.get(name), SPARSE.get(name)))
        config = dataclasses.replace(base, **switches) if switches else base
        variant = Variant(name, match_params(config, target, tolerance, model) if switches else base)
        if sparsity:
            variant.callbacks = sparse_callbacks(sparsity)
        variants.append(variant)
    return variants


def on_compiled_kernels(variants: Sequence[Variant]) -> list[Variant]:
    """The same arms, each one with a d×d_v residual state switched to ``delta_compiled=True``: its update and
    read run as ``torch.compile`` kernels of the plain forms (the model stays eager; same parameters, results
    equal up to rounding; on a CPU 1.03–1.13× faster than the fused forms,
    ``benchmarks/results/bench_train_cpu_baby_taps_after.json``).
    Every other arm is returned as it is."""
    return [dataclasses.replace(v, config=dataclasses.replace(v.config, delta_compiled=True))
            if v.config.has_matrix_state else v for v in variants]


@torch.no_grad()
def inference_tokens_per_s(model: torch.nn.Module, data, batch_size: int, device: torch.device,
                           repeats: int = 5) -> float:
    """Forward-only throughput (eval mode, no grad) on one validation batch, in input positions per second."""
    model.eval()
    x, _ = data.get_batch("val", batch_size, model.config.block_size, generator=torch.Generator().manual_seed(0),
                          device=device)
    model(x)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        model(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return repeats * x.shape[0] * x.shape[1] / (time.perf_counter() - t0)


class GridRunError(RuntimeError):
    """Some runs of a grid crashed (not diverged: a diverged run is a result). Raised after every other run
    finished; ``results`` holds all of them, the crashed ones as ``status == "failed"`` rows with their error."""

    def __init__(self, results: pd.DataFrame, crashed: list[tuple[str, int, BaseException]]):
        self.results, self.crashed = results, crashed
        super().__init__(f"{len(crashed)} run(s) crashed: " + "; ".join(
            f"{name} seed {seed}: {type(exc).__name__}: {exc}" for name, seed, exc in crashed)
            + " (the finished runs are in this error's .results)")


# ---------------------------------------------------------------------------------------------------------------
# One run of a grid: what it needs (RunSpec), what it returns (RunResult), and the one function that does it,
# in this process or in a worker. A worker trains with one thread; results are put back in (variant, seed)
# order whatever order the runs finish in.


@dataclass
class RunSpec:
    variant: Variant
    seed: int
    data: object
    train_config: TrainConfig
    model_factory: Callable[[ResonanceConfig], torch.nn.Module]

    @property
    def config(self) -> TrainConfig:
        return dataclasses.replace(self.train_config, seed=self.seed, **self.variant.train_overrides)


@dataclass
class RunResult:
    variant: str
    seed: int
    history: pd.DataFrame  # the trainer's history plus the grid's columns; one failed row when it failed
    model_state: dict | None = None  # model.state_dict() of a finished run (CPU tensors)
    callback_states: list | None = None  # each callback's state_dict()
    exception: BaseException | None = None  # a crash (a divergence is a result, not a crash)
    seconds: float = 0.0
    cached: bool = False


def execute_run(spec: RunSpec, threads: int | None = None, partial: str | Path | None = None) -> RunResult:
    """Train one (variant, seed): seed ``torch``, build the model, train, add the grid's columns. A divergence
    (``NonFiniteLossError``) and a crash both become one ``failed`` row; a crash also carries its exception.

    ``partial``: a checkpoint file the run writes at every evaluation and, when it already exists, resumes from
    (``train(resume_from=...)``, bit for bit), so a run that was cut off goes on from its last evaluation.
    A file that cannot be resumed (unreadable, another model or schedule) is a crash naming it, never skipped."""
    if threads is not None:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    cfg = spec.config
    device, commit = resolve_device(cfg.device), git_commit()
    torch.manual_seed(spec.seed)
    try:
        model = spec.model_factory(spec.variant.config)
        callbacks = list(spec.variant.callbacks(model, cfg))
        resume = partial if partial is not None and Path(partial).exists() else None
        run_cfg = cfg if partial is None else dataclasses.replace(cfg, checkpoint_path=str(partial))
        history = train(model, spec.data, run_cfg, callbacks=callbacks, resume_from=resume)
    except Exception as exc:  # noqa: BLE001 - recorded with the run; crashes are raised by run_grid
        failed = pd.DataFrame([{"variant": spec.variant.name, "seed": spec.seed,
                                "step": getattr(exc, "step", float("nan")), "val_loss": float("nan"),
                                "device": device_name(device), "commit": commit, "status": "failed",
                                "error": f"{type(exc).__name__}: {exc}"}])
        crash = None if isinstance(exc, NonFiniteLossError) else exc
        return RunResult(spec.variant.name, spec.seed, failed, exception=crash, seconds=time.perf_counter() - t0)
    history.insert(0, "seed", spec.seed)
    history.insert(0, "variant", spec.variant.name)
    history["params"] = count_params(model)
    history["nonzero_params"] = sum(int((p != 0).sum()) for p in model.parameters())
    history["infer_tokens_per_s"] = inference_tokens_per_s(model, spec.data, cfg.batch_size, device)
    for name, value in final_metrics(model, spec.data, cfg.batch_size, device).items():
        history.loc[history.index[-1], name] = value  # the trained model's, on its last row
    history["device"] = device_name(device)
    history["commit"] = commit
    history["status"], history["error"] = "ok", ""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return RunResult(spec.variant.name, spec.seed, history, state, [cb.state_dict() for cb in callbacks],
                     seconds=time.perf_counter() - t0)


# Tokens per forward pass of a language model's whole-split evaluation, at least: its windows are batched
# max(training batch, EVAL_TOKENS / block_size) at a time, so that a small model's evaluation is not mostly
# per-call overhead. The loss is the same sum over every position, up to float rounding.
EVAL_TOKENS = 4096


def final_metrics(model: torch.nn.Module, data, batch_size: int, device) -> dict[str, float]:
    """The reported numbers of a trained model, on whole splits: ``final_val_loss``/``final_val_acc`` (what
    choices are made on) and ``test_loss``/``test_acc`` (the held-out split, for the reported number only).
    A language model is scored on every position of the token stream (``train.evaluate_split``, data with
    ``split``); a classifier on every example (``train.evaluate_examples``, data with ``examples``). Empty for
    data with neither (the toy tasks are endless random streams). A language model's windows go
    ``max(batch_size, EVAL_TOKENS // block_size)`` to a forward pass; a classifier's examples ``batch_size``."""
    if not hasattr(model, "config"):
        return {}
    metrics = {}
    for split, prefix in (("val", "final_val"), ("test", "test")):
        if hasattr(data, "split"):
            tokens = data.split(split)
            windows = max(batch_size, EVAL_TOKENS // model.config.block_size)
            result = evaluate_split(model, tokens, windows, device) if len(tokens) > 1 else None
        elif hasattr(data, "examples") and split in getattr(data, "splits", {}):
            result = evaluate_examples(model, *data.examples(split), batch_size, device)
        else:
            result = None
        if result is not None:
            metrics[f"{prefix}_loss"], metrics[f"{prefix}_acc"] = result["loss"], result["acc"]
    return metrics


def rebuild_model(spec: RunSpec, result: RunResult) -> torch.nn.Module:
    """The trained model of a finished run, rebuilt in this process from its state (with its callbacks
    re-attached, e.g. the sparsifier with its masks and etch graph), on the CPU."""
    torch.manual_seed(spec.seed)
    model = spec.model_factory(spec.variant.config)
    callbacks = list(spec.variant.callbacks(model, spec.config))
    model.load_state_dict(result.model_state)
    for callback, state in zip(callbacks, result.callback_states or [], strict=True):
        callback.load_state_dict(state)
    return model.cpu()


# ---------------------------------------------------------------------------------------------------------------
# The run cache: a finished run is stored under a key of everything that decides its result — the variant's
# config, callbacks and train overrides, the train config and seed, the model factory, the data, the device type
# and the library's code — so an interrupted or split profile resumes where it stopped and a figure can be rebuilt
# without retraining. (Thread counts are not in the key: they change results only at rounding level.)


def _fingerprint_callable(fn) -> str:
    """What a callable computes, as text: its qualified name, its source (or bytecode) and its closure's values."""
    try:
        body = inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        body = code.co_code.hex() if code is not None else repr(fn)
    cells = [repr(c.cell_contents) for c in (getattr(fn, "__closure__", None) or ())]
    return f"{getattr(fn, '__qualname__', type(fn).__name__)}|{body}|{cells}"


def _fingerprint_data(data) -> str:
    """A hash of what the data object holds: tensors by their bytes, random streams by their seed, other
    attributes by value (never by object address, so the same corpus or task gives the same key)."""
    digest = hashlib.sha256()

    def feed(value, depth=0) -> None:
        if isinstance(value, torch.Tensor):
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(value, torch.Generator):
            digest.update(f"generator:{value.initial_seed()}".encode())
        elif isinstance(value, dict):
            for k in sorted(value, key=str):
                digest.update(str(k).encode())
                feed(value[k], depth + 1)
        elif isinstance(value, (list, tuple)):
            for item in value:
                feed(item, depth + 1)
        elif isinstance(value, (str, int, float, bool, type(None))):
            digest.update(repr(value).encode())
        elif hasattr(value, "__dict__") and depth < 4:
            digest.update(type(value).__name__.encode())
            feed(vars(value), depth + 1)
        else:
            digest.update(type(value).__name__.encode())

    feed(data)
    return digest.hexdigest()


# The modules a training run executes. Their source is the "code version" of a cached run; the modules that
# only analyse, plot, report or orchestrate (stats, claims, findings, plots, report, notebooks, session, source,
# compute, profiles, provenance) are left out, so editing them keeps finished runs valid.
TRAINING_MODULES = ("attention", "checks", "component", "components", "data", "delta", "experiments", "halting",
                    "memory", "model", "phase", "premanifest", "prime", "sparsity", "train")


def semantic_source(text: str) -> str:
    """What a module's source computes, without what it says: its syntax tree with docstrings removed, dumped
    without line numbers (comments and formatting never reach the tree). A docstring or comment edit gives the
    same text; any change to code gives another."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def code_version() -> str:
    """A hash of what the modules a training run executes (``TRAINING_MODULES``) compute
    (``semantic_source``): a change to their code gives new cache keys; a change to their docstrings or
    comments does not."""
    digest = hashlib.sha256()
    folder = Path(__file__).parent
    for name in TRAINING_MODULES:
        digest.update(name.encode() + semantic_source((folder / f"{name}.py").read_text(encoding="utf-8")).encode())
    return digest.hexdigest()[:16]


def results_version(code: str | None = None) -> str:
    """The library version a run's results are keyed by: ``code`` (default ``code_version()``), or the earlier
    version it was reviewed to train identically (``RESULT_EQUIVALENT_CODE``)."""
    code = code or code_version()
    return RESULT_EQUIVALENT_CODE[code][0] if code in RESULT_EQUIVALENT_CODE else code


# What is left out of a run's key because it changes how a run is computed, not what: the fused, compiled or
# plain forms of one function (tests hold them equal, values and gradients), how often the host reads the losses
# back, and the progress display and checkpoint file. Like the thread count, they change a result at rounding
# level at most, so runs that differ only in them are the same run.
IMPLEMENTATION_FIELDS = ("delta_fused", "delta_compiled", "halting_fused")  # of ResonanceConfig
COSMETIC_TRAIN_FIELDS = ("progress", "checkpoint_path", "eval_interval_progress", "sync_interval")  # of TrainConfig


def run_key(spec: RunSpec, code: str | None = None) -> str:
    """The cache key of one run: a sha256 of everything that decides its result — the variant's name, config,
    callbacks and train overrides, the train config and seed, the model factory, the data, the device type —
    and of ``code``, the library version it is keyed by (default ``results_version()``)."""
    cfg = dataclasses.asdict(spec.config)
    for cosmetic in COSMETIC_TRAIN_FIELDS:
        cfg.pop(cosmetic, None)
    model = dataclasses.asdict(spec.variant.config)
    for how in IMPLEMENTATION_FIELDS:
        model.pop(how, None)
    payload = {"variant": spec.variant.name, "config": model, "train": cfg,
               "callbacks": _fingerprint_callable(spec.variant.callbacks),
               "factory": _fingerprint_callable(spec.model_factory), "data": _fingerprint_data(spec.data),
               "device": resolve_device(cfg["device"]).type, "code": code or results_version()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()


def _cache_load(cache_dir, key: str, spec: RunSpec, need_model: bool = True) -> RunResult | None:
    """A cached run: its history, and its trained weights when ``need_model``. An entry may hold the history
    alone (the committed results keep histories in git and leave the weights out): it serves a grid that needs
    no models, and counts as missing for one that does (that run is trained again)."""
    folder = Path(cache_dir) / key
    if not (folder / "history.json").exists():
        return None
    has_state = (folder / "state.pt").exists()
    if need_model and not has_state:
        return None
    history = pd.read_json(folder / "history.json", orient="table")
    if not has_state:
        return RunResult(spec.variant.name, spec.seed, history, cached=True)
    state = torch.load(folder / "state.pt", weights_only=True)
    return RunResult(spec.variant.name, spec.seed, history, state["model"], state["callbacks"], cached=True)


def partial_checkpoint_path(cache_dir, key: str, spec: RunSpec) -> Path:
    """Where a cached grid's run keeps its checkpoint while it trains, so that a run cut off (a session that
    ends, a preempted job) resumes from its last evaluation: ``<cache_dir>/.partial/<key>-<how>.pt``, ``how`` a
    hash of the implementation fields the key leaves out (a checkpoint resumes only the model it came from).
    The file is deleted once the finished run is stored; a failed run's stays (its last good state)."""
    how = {name: getattr(spec.variant.config, name, None) for name in IMPLEMENTATION_FIELDS}
    digest = hashlib.sha256(json.dumps(how, sort_keys=True, default=repr).encode()).hexdigest()[:8]
    return Path(cache_dir) / ".partial" / f"{key}-{digest}.pt"


def _cache_store(cache_dir, key: str, result: RunResult) -> None:
    """Write a finished run atomically: into a scratch folder, then renamed into place."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=cache_dir))
    try:
        result.history.reset_index(drop=True).to_json(scratch / "history.json", orient="table", index=False)
        torch.save({"model": result.model_state, "callbacks": result.callback_states}, scratch / "state.pt")
        os.replace(scratch, cache_dir / key)
    except OSError:
        if (cache_dir / key).exists():  # another worker stored the same run first: keep theirs
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            raise


# ---------------------------------------------------------------------------------------------------------------
# Workers. The local pool forks this process, so the runs' callables (lambdas, closures defined in a notebook)
# need no pickling: each worker reads its spec from _FORKED_SPECS by index. Any other Executor (dask's
# Client.get_executor(), Ray, submitit) receives execute_run and the spec itself, pickled its own way.

_FORKED_SPECS: list[RunSpec] = []
_FORKED_PARTIALS: list[Path | None] = []


def _run_forked(index: int) -> RunResult:
    _drop_inherited_compile_pool()
    return execute_run(_FORKED_SPECS[index], threads=1, partial=_FORKED_PARTIALS[index])


def _drop_inherited_compile_pool() -> None:
    """Forget inductor's thread pool for C++ compiles if the parent made one (its first ``torch.compile`` of a
    CPU kernel does: a throughput timing of ``delta_compiled`` arms, say). Fork copies the pool but not its
    threads, and torch's own after-fork hook resets only its process pool: a worker's first compile would
    queue on a thread that does not exist and wait forever. Dropped, the worker's first compile makes a new one."""
    async_compile = sys.modules.get("torch._inductor.async_compile")
    if async_compile is not None:
        async_compile.AsyncCompile.pool.cache_clear()


def default_workers() -> int:
    """One worker per core (each trains with one thread)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _wanted_models(return_models, specs: Sequence[RunSpec]) -> set[tuple[str, int]]:
    """The (variant, seed) pairs whose trained models ``run_grid`` returns: all with True, none with False, else the
    pairs given (each one a run of the grid)."""
    runs = {(spec.variant.name, spec.seed) for spec in specs}
    if isinstance(return_models, bool):
        return runs if return_models else set()
    wanted = {tuple(pair) for pair in return_models} if isinstance(return_models, Collection) else None
    if wanted is None or not all(len(p) == 2 for p in wanted):
        raise ValueError(f"return_models={return_models!r} must be True, False or a collection of (variant, seed) "
                         "pairs")
    unknown = sorted(wanted - runs, key=str)
    if unknown:
        raise ValueError(f"return_models names {unknown}, which the grid does not run; its runs: {sorted(runs, key=str)}")
    return wanted


def run_grid(variants: Sequence[Variant], seeds: Sequence[int], data, train_config: TrainConfig,
             model_factory: Callable[[ResonanceConfig], torch.nn.Module] | None = None,
             return_models: bool | Collection[tuple[str, int]] = False, *, workers: int | None = None, executor=None,
             cache_dir=None, progress: bool = True):
    """Train every variant with every seed; one row per (variant, seed, eval step).

    ``model_factory(config)`` builds each model; by default ``ResonanceLM(config, vocab=<the data's
    tokenizer vocabulary, if it has one>)``.

    Where the runs run: ``executor`` (any ``concurrent.futures.Executor``, e.g. dask.distributed's
    ``Client.get_executor()``) if given; else ``workers`` local processes, one thread each (None: one per core;
    1: in this process, with its threads). On a CUDA device the runs stay in this process.
    ``cache_dir``: finished runs are read from and written to this folder (see ``run_key``), so a grid that
    stopped resumes and a finished one is rebuilt without training; a run cut off mid-training resumes from its
    last evaluation (``partial_checkpoint_path``; its ``elapsed_s`` then counts from the resumption).
    ``progress`` prints one line per finished run: runs done / total, its time, and the estimated time left.

    Columns: variant, seed, step, the trainer's metrics, params, nonzero_params, infer_tokens_per_s, device,
    commit, status (``ok`` / ``failed``) and error. A run that diverges (``NonFiniteLossError``) is a result:
    one ``failed`` row with NaN metrics and its error, and the grid goes on. A run that crashes is recorded the
    same way, and once every other run has finished a ``GridRunError`` carrying all the rows is raised.
    With ``return_models=True`` also returns ``{(variant, seed): trained model}`` (on the CPU); with a collection of
    (variant, seed) pairs, only those models — the other runs are then served from a cached history alone, never
    trained again for weights nobody reads.
    """
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique, got {names}")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers={workers!r} must be a positive int (or None: one per core)")
    if model_factory is None:
        vocab = getattr(getattr(data, "tokenizer", None), "itos", None)
        model_factory = lambda config: ResonanceLM(config, vocab=vocab)  # noqa: E731
    specs = [RunSpec(v, s, data, train_config, model_factory) for v in variants for s in seeds]
    results: list[RunResult | None] = [None] * len(specs)
    code = results_version() if cache_dir is not None else None
    keys = [run_key(spec, code) for spec in specs] if cache_dir is not None else [None] * len(specs)
    partials = [partial_checkpoint_path(cache_dir, key, spec) if key is not None else None
                for spec, key in zip(specs, keys, strict=True)]
    wanted = _wanted_models(return_models, specs)
    for i, (spec, key) in enumerate(zip(specs, keys, strict=True)):
        if key is not None:
            results[i] = _cache_load(cache_dir, key, spec, need_model=(spec.variant.name, spec.seed) in wanted)
    todo = [i for i, r in enumerate(results) if r is None]
    t_start, done = time.perf_counter(), len(specs) - len(todo)
    if progress and done:
        print(f"grid: {done} of {len(specs)} runs read from the cache", flush=True)

    def finished(i: int, result: RunResult) -> None:
        nonlocal done
        results[i] = result
        done += 1
        if cache_dir is not None and result.model_state is not None:
            _cache_store(cache_dir, keys[i], result)
            partials[i].unlink(missing_ok=True)  # stored: its checkpoint is no longer needed
        if progress:
            elapsed = time.perf_counter() - t_start
            left = elapsed / (done - (len(specs) - len(todo))) * (len(specs) - done)
            status = "ok" if result.model_state is not None else "FAILED"
            print(f"grid: {done}/{len(specs)} · {result.variant} seed {result.seed} {status} in "
                  f"{result.seconds:.0f} s · about {left / 60:.1f} min left", flush=True)

    on_cuda = resolve_device(train_config.device).type == "cuda"
    n_workers = 1 if on_cuda else (workers if workers is not None else default_workers())
    if executor is not None:
        futures = {executor.submit(execute_run, specs[i], 1, partials[i]): i for i in todo}
        for future in cf.as_completed(futures):
            finished(futures[future], future.result())
    elif n_workers == 1 or len(todo) <= 1:
        for i in todo:
            finished(i, execute_run(specs[i], partial=partials[i]))
    else:
        global _FORKED_SPECS, _FORKED_PARTIALS
        _FORKED_SPECS, _FORKED_PARTIALS = specs, partials
        try:
            with cf.ProcessPoolExecutor(min(n_workers, len(todo)), mp_context=multiprocessing.get_context("fork")
                                        ) as pool:
                futures = {pool.submit(_run_forked, i): i for i in todo}
                for future in cf.as_completed(futures):
                    finished(futures[future], future.result())
        finally:
            _FORKED_SPECS, _FORKED_PARTIALS = [], []
    df = pd.concat([r.history for r in results], ignore_index=True)
    crashed = [(r.variant, r.seed, r.exception) for r in results if r.exception is not None]
    if crashed:
        raise GridRunError(df, crashed) from crashed[0][2]
    if return_models is False:
        return df
    models = {(r.variant, r.seed): rebuild_model(spec, r) for spec, r in zip(specs, results, strict=True)
              if r.model_state is not None and (r.variant, r.seed) in wanted}
    return df, models


def block_grad_norms(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """‖∇_θ L‖₂ over each block's parameters for one batch (the model's gradients are overwritten)."""
    model.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    return [torch.sqrt(sum(p.grad.square().sum() for p in b.parameters() if p.grad is not None)).item()
            for b in model.blocks]


def failed_runs(final: pd.DataFrame, metric: str) -> pd.Series:
    """Which final rows are failed runs: marked ``failed`` by ``run_grid``, or with a non-finite ``metric``."""
    failed = ~np.isfinite(pd.to_numeric(final[metric], errors="coerce").to_numpy(dtype=float))
    if "status" in final:
        failed |= final["status"].eq("failed").to_numpy()
    return pd.Series(failed, index=final.index)


def paired_differences(runs: pd.DataFrame, arm: str, baseline: str = "baseline", metric: str = "test_loss"
                       ) -> tuple[list[float], int]:
    """arm − baseline of ``metric`` at each run's last evaluation, one per seed that both finished (in seed
    order), and the number of seeds left out because a run of either failed."""
    for name in (arm, baseline):
        if name not in set(runs["variant"]):
            raise ValueError(f"variant {name!r} is not in the runs; variants: {sorted(set(runs['variant']))}")
    steps = runs["step"].fillna(-1)
    final = runs[steps == steps.groupby([runs["variant"], runs["seed"]]).transform("max")]
    final = final.assign(_failed=failed_runs(final, metric))
    by_seed = {name: final[final["variant"] == name].set_index("seed") for name in (arm, baseline)}
    seeds = sorted(set(by_seed[arm].index) | set(by_seed[baseline].index))
    ok = [s for s in seeds if all(s in t.index and not t.loc[s, "_failed"] for t in by_seed.values())]
    differences = [float(by_seed[arm].loc[s, metric]) - float(by_seed[baseline].loc[s, metric]) for s in ok]
    return differences, len(seeds) - len(ok)


def summarize(df: pd.DataFrame, baseline: str | None = "baseline", metric: str = "val_loss",
              confidence: float = 0.95, higher_is_better: bool = False, margin: float = LM_MARGIN
              ) -> pd.DataFrame:
    """Final-step ``metric`` per variant: mean, interval, n, and the seed-paired difference to baseline
    with its interval and the protocol's verdict at ``margin`` (``stats.decide``: better / worse beyond the
    margin, equivalent inside it, else inconclusive; ``higher_is_better`` says which direction improves).
    The intervals are per arm; a claim's family-wise intervals and Holm p-values come from ``claims``.

    Failed runs (diverged, crashed, non-finite metric) are not seeds of the statistics and are never dropped
    silently: ``n_seeds`` counts the finished ones, ``n_failed`` and ``failed_seeds`` the others, ``n_paired``
    the seeds finished by both the variant and the baseline, and a verdict says how many seeds failed."""
    steps = df["step"].fillna(-1)  # a crashed run's one row has no step
    final = df[steps == steps.groupby([df["variant"], df["seed"]]).transform("max")]
    final = final.assign(_failed=failed_runs(final, metric))
    if baseline is not None and baseline not in set(final["variant"]):
        raise ValueError(f"baseline={baseline!r} is not a variant; variants: {sorted(set(final['variant']))}")
    finished = final[~final["_failed"]]
    base = finished[finished["variant"] == baseline].set_index("seed")[metric] if baseline else None
    rows = []
    for name, group in final.groupby("variant", sort=False):
        ok, failed = group[~group["_failed"]], group[group["_failed"]]
        mean, lo, hi = t_interval(ok[metric].astype(float), confidence)
        row = {"variant": name, "n_seeds": len(ok), f"{metric}_mean": mean, "ci_low": lo, "ci_high": hi,
               "n_failed": len(failed), "failed_seeds": " ".join(str(s) for s in failed["seed"])}
        every_eval = df[df["variant"] == name]  # throughput averaged over the whole run, not the last interval
        for col in ("params", "nonzero_params", "tokens_per_s", "infer_tokens_per_s"):
            if col in df:
                row[col] = every_eval[col].mean()
        if base is not None:
            paired = (ok.set_index("seed")[metric].astype(float) - base).dropna()  # seeds finished by both
            d_mean, d_lo, d_hi = t_interval(paired, confidence)
            said = "baseline" if name == baseline else decide(d_lo, d_hi, margin, not higher_is_better)
            if len(failed):
                said += f" ({len(failed)} of {len(group)} seeds failed)"
            row.update({"n_paired": len(paired), "delta_mean": d_mean, "delta_ci_low": d_lo,
                        "delta_ci_high": d_hi, "verdict": said})
            if "tokens_per_s" in df:
                row["throughput_vs_baseline"] = row["tokens_per_s"] / df.loc[
                    df["variant"] == baseline, "tokens_per_s"].mean()
        rows.append(row)
    return pd.DataFrame(rows)
