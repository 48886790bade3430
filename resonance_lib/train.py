"""The one trainer: AdamW, linear warm-up + cosine decay, clipping, bf16 autocast on CUDA, evals,
callbacks, checkpoints that resume bit-for-bit, and a hard stop on a non-finite loss.

The loop is nanoGPT's ``train.py`` made into a function. A *step* is one optimizer update; evaluation
happens before the update at every multiple of ``eval_interval`` and after the last one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm  # the text bar: tqdm.auto warns in kernels without ipywidgets

from .checks import check_bool, check_float, check_int


@dataclass
class TrainConfig:
    """Optimisation settings; the defaults are nanoGPT's CPU "baby" shakespeare_char run."""

    max_iters: int = 2000
    batch_size: int = 12
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int | None = None  # None: decay over max_iters
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0 switches clipping off
    eval_interval: int = 250
    eval_iters: int = 20
    eval_seed: int = 1234  # the same eval batches at every eval, for every variant
    seed: int = 1337
    device: str = "auto"
    autocast: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    compile: bool = False
    progress: bool | None = None  # None: a progress bar only when stderr is a terminal
    checkpoint_path: str | None = None  # saved at every eval and at the end when set
    # steps between host syncs (reading the losses back, the non-finite check, timing); None: 1 on a CPU, where
    # a sync costs nothing, 10 on a GPU (as nanoGPT's log_interval), where each one stalls the queue of kernels
    sync_interval: int | None = None

    def __post_init__(self):
        for name in ("max_iters", "batch_size", "eval_interval", "eval_iters"):
            check_int(name, getattr(self, name))
        check_int("warmup_iters", self.warmup_iters, low=0)
        if self.lr_decay_iters is not None:
            check_int("lr_decay_iters", self.lr_decay_iters)
        # AdamW moves each weight by about lr per step: a rate above 1 only overflows.
        check_float("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        check_float("min_lr", self.min_lr, 0.0, self.learning_rate)
        check_float("weight_decay", self.weight_decay, 0.0)
        check_float("beta1", self.beta1, 0.0, 1.0, high_open=True)
        check_float("beta2", self.beta2, 0.0, 1.0, high_open=True)
        check_float("grad_clip", self.grad_clip, 0.0)  # 0 switches clipping off
        check_int("eval_seed", self.eval_seed, low=0)
        check_int("seed", self.seed, low=0)
        check_bool("autocast", self.autocast)
        check_bool("compile", self.compile)
        if self.progress is not None:
            check_bool("progress", self.progress)
        if self.sync_interval is not None:
            check_int("sync_interval", self.sync_interval)
        if self.checkpoint_path is not None and not isinstance(self.checkpoint_path, str | Path):
            raise ValueError(f"checkpoint_path={self.checkpoint_path!r} must be a path (str) or None")
        resolve_device(self.device)  # validates the name

    @property
    def decay_iters(self) -> int:
        """The step at which the cosine decay reaches ``min_lr``."""
        return self.lr_decay_iters or self.max_iters


# Fields a resumed run may change: how long it runs and how it reports, never what it optimises.
RESUMABLE_CHANGES = ("max_iters", "lr_decay_iters", "eval_interval", "device", "compile", "progress",
                     "checkpoint_path")


class NonFiniteLossError(RuntimeError):
    """A training or evaluation loss (or a weight about to be saved) became NaN or infinite; training
    stopped without saving the bad state."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that belongs to another model or another optimisation."""


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; otherwise ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``."""
    if not isinstance(device, str):
        raise ValueError(f"device={device!r}; allowed: 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device in ("cpu", "cuda", "mps") or (device.startswith("cuda:") and device[5:].isdigit()):
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} asked for, but CUDA is not available here; use 'auto' or 'cpu'")
        return torch.device(device)
    raise ValueError(f"device={device!r}; allowed: 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'")


def stream_seed(seed: int, stream: str) -> int:
    """The seed of a named random stream of the run seeded ``seed`` (e.g. ``"sparsity"``): a hash of both, so
    every stream of a run follows the run's seed and no two streams share a sequence."""
    digest = hashlib.sha256(f"{seed}/{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # a non-negative int64


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``learning_rate``, then lr = min_lr + ½(1 + cos(π·progress))·(lr − min_lr)."""
    decay_iters = cfg.decay_iters
    if step < cfg.warmup_iters:
        return cfg.learning_rate * (step + 1) / (cfg.warmup_iters + 1)
    if step >= decay_iters:
        return cfg.min_lr
    progress = (step - cfg.warmup_iters) / max(1, decay_iters - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - cfg.min_lr)


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matmul weights only; norms, biases and embeddings are not decayed
    (minGPT's grouping). A weight shared with an embedding (the tied head) counts as an embedding."""
    no_decay = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay, plain = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 and id(p) not in no_decay else plain).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2),
                             fused=device.type == "cuda")


class Callback:
    """Hooks into the loop. Override what you need; ``on_eval`` may add columns to ``metrics``."""

    def on_train_start(self, state: TrainState) -> None: ...
    def on_after_backward(self, state: TrainState) -> None: ...
    def on_step_end(self, state: TrainState) -> None: ...
    def on_eval(self, state: TrainState, metrics: dict[str, Any]) -> None: ...
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class TrainState:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    config: TrainConfig
    device: torch.device
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def auxiliary_losses(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weighted auxiliary terms of the model's last forward pass (e.g. ``{"ponder": λ·Σ(N + R)}``).

    Training minimises cross-entropy + Σ auxiliary terms; every reported loss is the cross-entropy alone, and
    each term gets its own column (``train_<name>``, ``val_<name>``). A model without auxiliary terms has none.
    """
    get = getattr(model, "auxiliary_losses", None)
    return dict(get()) if get is not None else {}


@torch.no_grad()
def evaluate(model: nn.Module, data, cfg: TrainConfig, device: torch.device, split: str = "val",
             autocast=contextlib.nullcontext, forward: nn.Module | None = None) -> dict[str, float]:
    """Mean cross-entropy ``loss``, next-token accuracy ``acc`` (argmax, over scored targets) and the mean
    of each auxiliary term, on ``eval_iters`` batches drawn with a generator reset to ``eval_seed``: the
    same batches at every eval and for every variant. ``forward`` is what runs the batches (the compiled
    model when training compiles it; default ``model``); the per-batch values stay on the device until one read
    at the end."""
    was_training = model.training
    model.eval()
    forward = forward or model
    gen = torch.Generator().manual_seed(cfg.eval_seed)
    block = model.config.block_size
    terms: dict[str, list[torch.Tensor]] = {"loss": []}
    correct, scored = [], []
    for _ in range(cfg.eval_iters):
        x, y = data.get_batch(split, cfg.batch_size, block, generator=gen, device=device)
        with autocast():
            logits, loss = forward(x, y)
        terms["loss"].append(loss.float())
        for name, value in auxiliary_losses(model).items():
            terms.setdefault(name, []).append(value.float())
        keep = y != -100
        correct.append((logits.argmax(-1)[keep] == y[keep]).sum())
        scored.append(keep.sum())
    model.train(was_training)
    names = list(terms)
    values = torch.stack([torch.stack(terms[n]) for n in names]).tolist()  # one read: (terms, eval_iters)
    hits, total = torch.stack([torch.stack(correct).sum(), torch.stack(scored).sum()]).tolist()
    metrics = {n: sum(v) / cfg.eval_iters for n, v in zip(names, values, strict=True)}
    metrics["acc"] = hits / max(total, 1)
    return metrics


@torch.no_grad()
def evaluate_split(model: nn.Module, tokens: torch.Tensor, batch_size: int, device: torch.device | str = "cpu"
                   ) -> dict[str, float]:
    """Cross-entropy and next-token accuracy over a *whole* token stream: the consecutive windows
    ``tokens[i : i+T]`` (targets shifted by one) for i = 0, T, 2T, …, every position scored once;
    loss = Σ per-token CE / number of scored tokens (the last, shorter window included)."""
    was_training = model.training
    model.eval()
    T, n = model.config.block_size, len(tokens) - 1  # n positions have a target
    n_full = n // T
    windows = [(tokens[:n_full * T].view(n_full, T), tokens[1:n_full * T + 1].view(n_full, T))]
    if n - n_full * T:
        windows.append((tokens[n_full * T:n][None], tokens[n_full * T + 1:n + 1][None]))
    total, correct, count = 0.0, 0, 0
    for xs, ys in windows:
        for i in range(0, len(xs), batch_size):
            x, y = xs[i:i + batch_size].to(device), ys[i:i + batch_size].to(device)
            logits, _ = model(x, y)
            total += F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum").item()
            correct += (logits.argmax(-1) == y).sum().item()
            count += y.numel()
    model.train(was_training)
    return {"loss": total / count, "acc": correct / count}



@torch.no_grad()
def evaluate_examples(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int,
                      device: torch.device | str = "cpu") -> dict[str, float]:
    """Cross-entropy and accuracy of a classifier over *every* example of a split (not a sample):
    loss = Σ_i CE(f(x_i), y_i) / n, acc = #{argmax f(x_i) = y_i} / n."""
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    for i in range(0, len(labels), batch_size):
        x, y = inputs[i:i + batch_size].to(device), labels[i:i + batch_size].to(device)
        logits, _ = model(x, y)
        total += F.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(-1) == y).sum().item()
    model.train(was_training)
    return {"loss": total / len(labels), "acc": correct / len(labels)}

# ---------------------------------------------------------------------------------------------- checkpoints
# A checkpoint holds tensors and plain data only (numbers, strings, lists, dicts): it loads with
# ``torch.load(weights_only=True)``, so a crafted file cannot run code. Configs and history travel as JSON.

CHECKPOINT_FORMAT = "resonance_lib.train/1"


def _config_json(config) -> str | None:
    return json.dumps(dataclasses.asdict(config), default=str) if dataclasses.is_dataclass(config) else None


def save_checkpoint(path: str | Path, state: TrainState, batch_gen: torch.Generator, callbacks) -> None:
    """Everything a resumed run needs to continue identically, written atomically, and only from finite
    weights (a non-finite weight raises ``NonFiniteLossError`` and leaves the previous file in place)."""
    bad = [n for n, p in state.model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise NonFiniteLossError(f"weights {bad[:3]} are not finite at step {state.step}; not saved to {path}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "step": state.step,
        "history": json.dumps(state.history, default=float),
        "batch_generator": batch_gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "callbacks": [cb.state_dict() for cb in callbacks],
        "train_config": _config_json(state.config),
        "model_config": _config_json(getattr(state.model, "config", None)),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str | Path, map_location=None) -> dict:
    """A checkpoint written by ``save_checkpoint``, loaded without running code; anything else (empty,
    truncated, another format, a crafted pickle) raises ``CheckpointError("not a valid checkpoint: PATH")``."""
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure to read is the same error for the caller
        raise CheckpointError(f"not a valid checkpoint: {path} ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"not a valid checkpoint: {path} (no {CHECKPOINT_FORMAT!r} format marker)")
    return payload


def _differences(saved: str | None, current: str | None, ignore=()) -> list[str]:
    if saved is None or current is None:
        return [] if saved == current else ["config: recorded in only one of checkpoint and run"]
    old, new = json.loads(saved), json.loads(current)
    return [f"{k}: checkpoint {old.get(k)!r}, this run {new.get(k)!r}"
            for k in sorted(set(old) | set(new)) if k not in ignore and old.get(k) != new.get(k)]


def _load_checkpoint(path, state: TrainState, batch_gen: torch.Generator, callbacks) -> None:
    payload = read_checkpoint(path, map_location=state.device)
    changed = _differences(payload["model_config"], _config_json(getattr(state.model, "config", None)))
    if changed:
        raise CheckpointError(f"checkpoint {path} is of another model; differing fields: " + "; ".join(changed))
    changed = _differences(payload["train_config"], _config_json(state.config), ignore=RESUMABLE_CHANGES)
    saved_decay = TrainConfig(**json.loads(payload["train_config"])).decay_iters
    if saved_decay != state.config.decay_iters:
        changed.append(f"decay_iters (lr_decay_iters or max_iters): checkpoint {saved_decay}, "
                       f"this run {state.config.decay_iters}")
    if changed:
        raise CheckpointError(f"checkpoint {path} was trained with other settings; a resumed run may change only "
                              f"{list(RESUMABLE_CHANGES)} (keeping the schedule); differing: " + "; ".join(changed))
    state.model.load_state_dict(payload["model"])
    state.optimizer.load_state_dict(payload["optimizer"])
    state.step, state.history = payload["step"], json.loads(payload["history"])
    batch_gen.set_state(payload["batch_generator"])
    torch.set_rng_state(payload["torch_rng"])
    if payload["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    for cb, cb_state in zip(callbacks, payload["callbacks"], strict=True):
        cb.load_state_dict(cb_state)


def check_vocabulary(model: nn.Module, data) -> None:
    """The model's embedding must cover every token id the data can produce."""
    model_vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    data_vocab = getattr(data, "vocab_size", None)
    if model_vocab is not None and data_vocab is not None and model_vocab < data_vocab:
        raise ValueError(f"vocab_size={model_vocab} of the model is smaller than the data's vocabulary of "
                         f"{data_vocab} tokens; set ResonanceConfig(vocab_size={data_vocab}) (or larger)")


def _stop(what: str, value: float, step: int, cfg: TrainConfig, bar) -> NonFiniteLossError:
    kept = cfg.checkpoint_path if cfg.checkpoint_path and Path(cfg.checkpoint_path).exists() else None
    bar.close()
    error = NonFiniteLossError(
        f"{what} is {value} at step {step}; stopped without saving. "
        + (f"The last good checkpoint is kept at {kept}." if kept else "No checkpoint was kept "
           "(set TrainConfig.checkpoint_path to keep one).")
        + " Try a lower learning_rate or grad_clip > 0."
    )
    error.step = step
    return error


def mixed_precision(cfg: TrainConfig, device: torch.device):
    """What a step runs under on ``device``: (autocast context factory, GradScaler or None). On CUDA with
    ``cfg.autocast``: bf16 where the GPU supports it, else fp16 with a GradScaler (fp16 gradients underflow
    without one); TF32 matmuls for what stays in fp32. Elsewhere: full precision, no scaler."""
    if not (cfg.autocast and device.type == "cuda"):
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        return contextlib.nullcontext, None
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


def fetch_batch(data, cfg: TrainConfig, block: int, generator: torch.Generator, device: torch.device):
    """The next training batch on ``device``: drawn on the CPU, and on CUDA copied from pinned memory without
    blocking, so the copy overlaps the work already queued on the GPU."""
    if device.type != "cuda":
        return data.get_batch("train", cfg.batch_size, block, generator=generator, device=device)
    x, y = data.get_batch("train", cfg.batch_size, block, generator=generator, device="cpu")
    return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)


def train(model: nn.Module, data, cfg: TrainConfig, callbacks=(), resume_from: str | Path | None = None
          ) -> pd.DataFrame:
    """Train ``model`` on ``data`` (anything with ``get_batch(split, batch_size, block_size, generator,
    device)``) and return the eval history: one row per eval with step, lr, train/val cross-entropy and
    accuracy, each auxiliary term in its own column, tokens/s.

    The optimised objective is cross-entropy + the model's auxiliary terms. The step loop reads nothing back from
    the device between syncs (every ``sync_interval`` steps and before each eval): the losses of those steps are
    read in one transfer and checked then. A non-finite training or eval loss stops the run with
    ``NonFiniteLossError`` naming the step where it appeared; checkpoints are written only at evals, from finite
    weights and losses, so the last good one is kept.
    """
    callbacks = list(callbacks)
    check_vocabulary(model, data)
    device = resolve_device(cfg.device)
    model.to(device).train()
    torch.manual_seed(cfg.seed)  # dropout; batches come from their own generator below
    batch_gen = torch.Generator().manual_seed(cfg.seed)
    optimizer = make_optimizer(model, cfg, device)
    state = TrainState(model, optimizer, cfg, device)
    if resume_from is not None:
        _load_checkpoint(resume_from, state, batch_gen, callbacks)
    autocast, scaler = mixed_precision(cfg, device)
    forward = torch.compile(model) if cfg.compile else model
    block = model.config.block_size
    show = cfg.progress if cfg.progress is not None else sys.stderr.isatty()
    bar = tqdm(total=cfg.max_iters, initial=state.step, disable=not show, leave=False)
    for cb in callbacks:
        cb.on_train_start(state)

    running, train_time, tokens, start = [], 0.0, 0, time.perf_counter()
    sync_every = cfg.sync_interval or (10 if device.type == "cuda" else 1)
    pending: list[tuple[int, torch.Tensor, torch.Tensor]] = []  # (step, loss, objective) not yet read back
    segment_start: float | None = None  # when the steps since the last sync began
    prefetched: tuple[torch.Tensor, torch.Tensor] | None = None  # the next step's batch, already on its way

    def sync() -> None:
        """Read the pending losses back in one transfer, stop at the first non-finite one (its own step), and
        add the wall time of the steps since the last sync (after the device has finished them)."""
        nonlocal train_time, segment_start
        if device.type == "cuda":
            torch.cuda.synchronize()
        if segment_start is not None:
            train_time += time.perf_counter() - segment_start
            segment_start = None
        if not pending:
            return
        values = torch.stack([torch.stack([loss, obj]) for _, loss, obj in pending]).float().tolist()
        for (at, _, _), (loss_value, objective_value) in zip(pending, values, strict=True):
            if not math.isfinite(objective_value):
                what = "training loss" if not math.isfinite(loss_value) else \
                    f"the auxiliary terms' sum (cross-entropy {loss_value:.4f}) in the training objective"
                raise _stop(what, objective_value - loss_value if math.isfinite(loss_value) else loss_value, at,
                            cfg, bar)
            running.append(loss_value)
        pending.clear()

    resumed_step = state.step if resume_from is not None else None
    while True:
        step = state.step
        if (step % cfg.eval_interval == 0 or step == cfg.max_iters) and step != resumed_step:
            sync()  # every step before an eval is checked and timed
            row = {"step": step, "lr": lr_at(min(step, cfg.max_iters - 1), cfg)}
            for split in ("train", "val"):
                metrics = evaluate(model, data, cfg, device, split, autocast, forward)
                if not math.isfinite(metrics["loss"]):
                    raise _stop(f"{split} loss (eval)", metrics["loss"], step, cfg, bar)
                row[f"{split}_loss"], row[f"{split}_acc"] = metrics.pop("loss"), metrics.pop("acc")
                row.update({f"{split}_{name}": value for name, value in metrics.items()})
            row["train_loss_running"] = sum(running) / len(running) if running else float("nan")
            row["tokens_per_s"] = tokens / train_time if train_time > 0 else float("nan")
            row["elapsed_s"] = time.perf_counter() - start
            for cb in callbacks:
                cb.on_eval(state, row)
            state.history.append(row)
            bar.set_postfix(val_loss=f"{row['val_loss']:.4f}")
            if cfg.checkpoint_path:
                save_checkpoint(cfg.checkpoint_path, state, batch_gen, callbacks)
            running, train_time, tokens = [], 0.0, 0
        if step >= cfg.max_iters:
            break

        if segment_start is None:
            segment_start = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        x, y = prefetched if prefetched is not None else fetch_batch(data, cfg, block, batch_gen, device)
        prefetched = None
        with autocast():
            _, loss = forward(x, y)
            objective = loss + sum(auxiliary_losses(model).values())
        # the next batch is drawn and copied while the device works through this step (never across an eval,
        # where the checkpoint saves the batch stream's state)
        if (step + 1) % cfg.eval_interval and step + 1 < cfg.max_iters:
            prefetched = fetch_batch(data, cfg, block, batch_gen, device)
        (scaler.scale(objective) if scaler else objective).backward()
        for cb in callbacks:
            cb.on_after_backward(state)
        if cfg.grad_clip > 0:
            if scaler:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        pending.append((step, loss.detach(), objective.detach()))
        state.step += 1
        for cb in callbacks:
            cb.on_step_end(state)
        if len(pending) >= sync_every:
            sync()
        tokens += x.shape[0] * x.shape[1]  # positions (a patch counts once)
        bar.update(1)
    bar.close()
    return pd.DataFrame(state.history)
