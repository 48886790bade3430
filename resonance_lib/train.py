"""The one trainer: AdamW, linear warm-up + cosine decay, clipping, bf16 autocast on CUDA, evals,
callbacks, checkpoints that resume bit-for-bit, and a hard stop on a non-finite loss.

The loop is nanoGPT's ``train.py`` made into a function. A *step* is one optimizer update; evaluation
happens before the update at every multiple of ``eval_interval`` and after the last one.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from tqdm.auto import tqdm


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

    def __post_init__(self):
        for name in ("max_iters", "batch_size", "eval_interval", "eval_iters"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if self.warmup_iters < 0:
            raise ValueError(f"warmup_iters={self.warmup_iters} must be >= 0")
        if not self.learning_rate > 0 or not 0 <= self.min_lr <= self.learning_rate:
            raise ValueError(f"learning_rate={self.learning_rate} must be > 0 and min_lr={self.min_lr} "
                             "in [0, learning_rate]")
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip={self.grad_clip} must be >= 0 (0 switches clipping off)")
        resolve_device(self.device)  # validates the name


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; training stopped without saving the bad state."""


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; otherwise ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device in ("cpu", "cuda", "mps") or (device.startswith("cuda:") and device[5:].isdigit()):
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} asked for, but CUDA is not available here; use 'auto' or 'cpu'")
        return torch.device(device)
    raise ValueError(f"device={device!r}; allowed: 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``learning_rate``, then lr = min_lr + ½(1 + cos(π·progress))·(lr − min_lr)."""
    decay_iters = cfg.lr_decay_iters or cfg.max_iters
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


@torch.no_grad()
def evaluate(model: nn.Module, data, cfg: TrainConfig, device: torch.device, split: str = "val",
             autocast=contextlib.nullcontext) -> tuple[float, float]:
    """Mean loss and next-token accuracy (argmax, over scored targets) on ``eval_iters`` batches
    drawn with a generator reset to ``eval_seed``: the same batches at every eval and for every variant."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(cfg.eval_seed)
    block = model.config.block_size
    losses, correct, scored = [], 0, 0
    for _ in range(cfg.eval_iters):
        x, y = data.get_batch(split, cfg.batch_size, block, generator=gen, device=device)
        with autocast():
            logits, loss = model(x, y)
        losses.append(loss.item())
        keep = y != -100
        correct += (logits.argmax(-1)[keep] == y[keep]).sum().item()
        scored += keep.sum().item()
    model.train(was_training)
    return sum(losses) / len(losses), correct / max(scored, 1)


def save_checkpoint(path: str | Path, state: TrainState, batch_gen: torch.Generator, callbacks) -> None:
    """Everything a resumed run needs to continue identically, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "step": state.step,
        "history": state.history,
        "batch_generator": batch_gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "callbacks": [cb.state_dict() for cb in callbacks],
        "train_config": dataclasses.asdict(state.config),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path, state: TrainState, batch_gen: torch.Generator, callbacks) -> None:
    payload = torch.load(path, map_location=state.device, weights_only=False)
    state.model.load_state_dict(payload["model"])
    state.optimizer.load_state_dict(payload["optimizer"])
    state.step, state.history = payload["step"], list(payload["history"])
    batch_gen.set_state(payload["batch_generator"])
    torch.set_rng_state(payload["torch_rng"])
    if payload["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    for cb, cb_state in zip(callbacks, payload["callbacks"], strict=True):
        cb.load_state_dict(cb_state)


def train(model: nn.Module, data, cfg: TrainConfig, callbacks=(), resume_from: str | Path | None = None
          ) -> pd.DataFrame:
    """Train ``model`` on ``data`` (anything with ``get_batch(split, batch_size, block_size, generator,
    device)``) and return the eval history: one row per eval with step, lr, train/val loss, tokens/s."""
    callbacks = list(callbacks)
    device = resolve_device(cfg.device)
    model.to(device).train()
    torch.manual_seed(cfg.seed)  # dropout; batches come from their own generator below
    batch_gen = torch.Generator().manual_seed(cfg.seed)
    optimizer = make_optimizer(model, cfg, device)
    state = TrainState(model, optimizer, cfg, device)
    if resume_from is not None:
        _load_checkpoint(resume_from, state, batch_gen, callbacks)
    use_autocast = cfg.autocast and device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_autocast else contextlib.nullcontext
    forward = torch.compile(model) if cfg.compile else model
    block = model.config.block_size
    show = cfg.progress if cfg.progress is not None else sys.stderr.isatty()
    bar = tqdm(total=cfg.max_iters, initial=state.step, disable=not show, leave=False)
    for cb in callbacks:
        cb.on_train_start(state)

    running, train_time, tokens, start = [], 0.0, 0, time.perf_counter()
    resumed_step = state.step if resume_from is not None else None
    while True:
        step = state.step
        if (step % cfg.eval_interval == 0 or step == cfg.max_iters) and step != resumed_step:
            train_loss, train_acc = evaluate(model, data, cfg, device, "train", autocast)
            val_loss, val_acc = evaluate(model, data, cfg, device, "val", autocast)
            row = {
                "step": step,
                "lr": lr_at(min(step, cfg.max_iters - 1), cfg),
                "train_loss": train_loss,
                "val_loss": val_loss,
                "train_acc": train_acc,
                "val_acc": val_acc,
                "train_loss_running": sum(running) / len(running) if running else float("nan"),
                "tokens_per_s": tokens / train_time if train_time > 0 else float("nan"),
                "elapsed_s": time.perf_counter() - start,
            }
            for cb in callbacks:
                cb.on_eval(state, row)
            state.history.append(row)
            bar.set_postfix(val_loss=f"{row['val_loss']:.4f}")
            if cfg.checkpoint_path:
                save_checkpoint(cfg.checkpoint_path, state, batch_gen, callbacks)
            running, train_time, tokens = [], 0.0, 0
        if step >= cfg.max_iters:
            break

        t0 = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        x, y = data.get_batch("train", cfg.batch_size, block, generator=batch_gen, device=device)
        with autocast():
            _, loss = forward(x, y)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            kept = cfg.checkpoint_path if cfg.checkpoint_path and Path(cfg.checkpoint_path).exists() else None
            bar.close()
            raise NonFiniteLossError(
                f"training loss is {loss_value} at step {step}; stopped without saving. "
                + (f"The last good checkpoint is kept at {kept}." if kept else "No checkpoint was kept "
                   "(set TrainConfig.checkpoint_path to keep one).")
                + " Try a lower learning_rate or grad_clip > 0."
            )
        loss.backward()
        for cb in callbacks:
            cb.on_after_backward(state)
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        for cb in callbacks:
            cb.on_step_end(state)
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_time += time.perf_counter() - t0
        tokens += x.shape[0] * x.shape[1]  # positions (a patch counts once)
        running.append(loss_value)
        bar.update(1)
    bar.close()
    return pd.DataFrame(state.history)

