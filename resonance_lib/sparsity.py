"""Dynamic sparsity: one mask engine, several strategies behind one interface.

**The engine.** Every sparsified weight W has a boolean mask M (kept as a buffer ``<name>_mask`` on the
module that owns W, so it travels with ``state_dict``). After every optimizer step the engine enforces
W ← W ⊙ M and zeroes AdamW's moments where M = 0, so a masked weight is exactly zero and carries no
momentum. Gradients of masked weights are zeroed before clipping (RigL reads them first).

**The strategies** (``SparsityConfig.strategy``), all updating masks every ``update_interval`` steps:

- ``dense``: no mask (sparsity 0) — the reference.
- ``static``: a random mask at the target, fixed for the whole run.
- ``gmp``: gradual magnitude pruning, s_t = s_f·(1 − (1 − (t − t₀)/(t₁ − t₀))³) (Zhu & Gupta 2017);
  a pruned weight stays pruned.
- ``set``: start at a random mask at the target; each update drops the fraction ζ_t of the smallest-
  magnitude active weights and regrows as many at random positions, at zero (Mocanu et al. 2018).
  ζ_t = ζ·½(1 + cos(π t / t_stop)).
- ``rigl``: as ``set``, but regrows where |∂L/∂W| is largest among inactive weights (Evci et al. 2020).
- ``resonance``: the seeds' prune/revive cycle, made to work and to hold its target. A ramp
  s_t = s_f·(1 − e^{−λu})/(1 − e^{−λ}), u = (t − t₀)/(t₁ − t₀) ("exponential decay", λ = ``decay_rate``).
  Per layer l the target is s_l = s_t·f_l / f̄ with the seeds' depth curve f_l = (l+1)^{1/(g + c)}
  (g = ``depth_gradient_exponent``, c = ``curvature_exponent``) normalised by the parameter-weighted mean
  f̄, so global sparsity is s_t. A cycle magnitude-prunes each layer to s'_l = s_l / (1 − ρ_t), then
  revives a fraction ρ_t = ``revive_ratio``·(1 + A·sin(2πt/P)) of the pruned weights at random, drawing
  their values from N(μ, σ + ``noise_floor``) of what was just pruned ("etched" statistics): the layer ends
  at s_l exactly. ``twist_mode`` flips the sign of the revived draws (the "Möbius" second pass:
  N(−μ, ·)). ``etch_memory`` records output units whose whole row the magnitude pass pruned ("ceased" neurons) as nodes
  of a ``networkx.Graph`` (edges join units of one block that ceased in the same cycle); with probability
  ``memory_revive_prob`` a cycle spends its revival budget of one layer on a ceased unit first
  ("meta-revival").

The seeds' public code prunes below a fixed tiny threshold and "revives" through ``param[mask].normal_()``,
which writes into a copy (nothing is revived), and crashes at the first backward pass; the version here
targets a sparsity and holds it (tested after every optimizer step).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from .checks import check_bool, check_choice, check_float, check_int
from .train import Callback, TrainState

STRATEGIES = ("dense", "static", "gmp", "set", "rigl", "resonance")


@dataclass
class SparsityConfig:
    strategy: str = "resonance"
    target_sparsity: float = 0.73
    weights: tuple[str, ...] | None = None  # parameter names; None: every 2-D weight in the blocks
    include_embeddings: bool = False  # add the token embedding (tied to the head) to the default set
    start_step: int = 0  # first mask update
    end_step: int = 1000  # the ramp (gmp, resonance) reaches the target here
    stop_step: int | None = None  # no mask updates after this step (None: update until the end)
    update_interval: int = 100
    drop_fraction: float = 0.3  # ζ for set / rigl
    revive_ratio: float = 0.1  # ρ for resonance
    wave_amplitude: float = 0.0  # A
    wave_period: int = 1000  # P, in steps
    depth_gradient_exponent: float = 10.0  # g
    curvature_exponent: float = 0.0  # c
    decay_rate: float = 5.0  # λ of the exponential ramp
    noise_floor: float = 1e-4
    twist_mode: bool = False
    etch_memory: bool = False
    memory_revive_prob: float = 0.1
    seed: int = 0

    def __post_init__(self):
        check_choice("strategy", self.strategy, STRATEGIES)
        check_float("target_sparsity", self.target_sparsity, 0.0, 1.0, high_open=True)
        if self.weights is not None and (isinstance(self.weights, str)
                                         or not all(isinstance(w, str) for w in self.weights)):
            raise ValueError(f"weights={self.weights!r} must be a tuple of parameter names or None")
        check_bool("include_embeddings", self.include_embeddings)
        for name in ("revive_ratio", "drop_fraction", "memory_revive_prob", "wave_amplitude"):
            check_float(name, getattr(self, name), 0.0, 1.0)
        check_int("update_interval", self.update_interval)
        check_int("wave_period", self.wave_period)
        check_int("start_step", self.start_step, low=0)
        check_int("end_step", self.end_step, low=0)
        if self.start_step > self.end_step:
            raise ValueError(f"start_step={self.start_step} must be >= 0 and <= end_step={self.end_step}")
        if self.stop_step is not None:
            check_int("stop_step", self.stop_step, low=0)
        check_float("depth_gradient_exponent", self.depth_gradient_exponent)
        check_float("curvature_exponent", self.curvature_exponent)
        if self.depth_gradient_exponent + self.curvature_exponent <= 0:
            raise ValueError(f"depth_gradient_exponent + curvature_exponent = "
                             f"{self.depth_gradient_exponent + self.curvature_exponent} must be > 0")
        check_float("decay_rate", self.decay_rate, 0.0, low_open=True)
        check_float("noise_floor", self.noise_floor, 0.0)
        check_bool("twist_mode", self.twist_mode)
        check_bool("etch_memory", self.etch_memory)
        check_int("seed", self.seed, low=0)
        if self.strategy == "resonance" and self.max_revive_fraction >= 1.0 - self.target_sparsity:
            # a cycle prunes to s / (1 − ρ) before reviving ρ of the pruned: that needs ρ < 1 − s
            raise ValueError(
                f"revive_ratio={self.revive_ratio} with wave_amplitude={self.wave_amplitude} revives up to "
                f"{self.max_revive_fraction:.3f} of the pruned weights, which cannot hold target_sparsity="
                f"{self.target_sparsity}: need revive_ratio·(1 + wave_amplitude) < 1 − target_sparsity = "
                f"{1.0 - self.target_sparsity:.3f}")

    @property
    def max_revive_fraction(self) -> float:
        """ρ at the crest of the wave: revive_ratio · (1 + wave_amplitude)."""
        return self.revive_ratio * (1.0 + self.wave_amplitude)


def _block_index(name: str) -> int:
    match = re.match(r"blocks\.(\d+)\.", name)
    return int(match.group(1)) if match else 0


class Sparsifier:
    """The mask engine and one strategy, attached to a model (see the module docstring)."""

    def __init__(self, model: nn.Module, config: SparsityConfig):
        self.model, self.config = model, config
        params = dict(model.named_parameters())
        if config.weights is not None:
            missing = [n for n in config.weights if n not in params]
            if missing:
                raise ValueError(f"weights {missing} are not parameters of the model; 2-D weights available: "
                                 f"{[n for n, p in params.items() if p.dim() == 2][:12]} …")
            names = list(config.weights)
        else:
            names = [n for n, p in params.items() if p.dim() == 2 and n.startswith("blocks.")]
            if config.include_embeddings:
                names.insert(0, "wte.weight")
        # (module, attribute) of every weight, found once. The weight and its mask are read from the module
        # every time, so the model's state is the one source of truth: ``model.to(device)`` moves both and
        # ``model.load_state_dict(...)`` loads both (the mask is the buffer ``<weight>_mask`` beside it).
        self._owners = {n: (model.get_submodule(n.rpartition(".")[0]), n.rpartition(".")[2]) for n in names}
        for n in names:
            owner, attr = self._owners[n]
            owner.register_buffer(f"{attr}_mask", torch.ones_like(params[n], dtype=torch.bool))
        self.n_layers = max(_block_index(n) for n in names) + 1 if names else 1
        self.generator = torch.Generator().manual_seed(config.seed)
        self.etch_graph = nx.Graph()
        self.cycles = 0
        self._last_step = 0
        self.revived_last = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self._grad_scores: dict[str, torch.Tensor] = {}
        model.sparsifier = self  # ResonanceLM.prune_and_revive_cycle() finds it here
        if config.strategy == "resonance":
            self._check_revival_can_hold(self.layer_targets(config.target_sparsity))
        if config.strategy in ("static", "set", "rigl"):
            self._random_masks(config.target_sparsity)
            self.apply()

    # ------------------------------------------------------------------ the engine

    @property
    def params(self) -> dict[str, nn.Parameter]:
        """The sparsified weights, by name, as the model holds them now."""
        return {n: getattr(owner, attr) for n, (owner, attr) in self._owners.items()}

    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """The masks, by weight name: the model's buffers ``<weight>_mask`` themselves (read-only view;
        change a mask with ``set_mask``)."""
        return {n: getattr(owner, f"{attr}_mask") for n, (owner, attr) in self._owners.items()}

    @torch.no_grad()
    def set_mask(self, name: str, mask: torch.Tensor) -> None:
        """Write ``mask`` into the model's buffer for weight ``name`` (in place: it stays the model's)."""
        owner, attr = self._owners[name]
        getattr(owner, f"{attr}_mask").copy_(mask)

    def _check_revival_can_hold(self, targets: dict[str, float]) -> None:
        rho = self.config.max_revive_fraction
        for n, target in targets.items():
            if target / (1.0 - rho) >= 1.0:
                raise ValueError(f"revive fractions up to {rho:.3f} (revive_ratio·(1 + wave_amplitude)) cannot hold "
                                 f"layer {n} at its depth-ramp sparsity {target:.3f}: need ρ < 1 − {target:.3f}; "
                                 "lower revive_ratio or flatten the ramp (raise depth_gradient_exponent)")

    @torch.no_grad()
    def apply(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """W ← W ⊙ M, and AdamW's exp_avg, exp_avg_sq ← 0 where M = 0."""
        optimizer = optimizer or self.optimizer
        masks = self.masks
        for n, p in self.params.items():
            mask = masks[n]
            p.mul_(mask)
            if optimizer is not None and p in optimizer.state:
                for key in ("exp_avg", "exp_avg_sq"):
                    if key in optimizer.state[p]:
                        optimizer.state[p][key].mul_(mask)

    @torch.no_grad()
    def mask_gradients(self) -> None:
        masks = self.masks
        for n, p in self.params.items():
            if p.grad is not None:
                p.grad.mul_(masks[n])

    def sparsity(self) -> float:
        """Fraction of masked entries over all sparsified weights."""
        total = sum(m.numel() for m in self.masks.values())
        return sum((~m).sum().item() for m in self.masks.values()) / max(total, 1)

    def weight_sparsity(self) -> float:
        """Fraction of sparsified weights that are exactly zero (≥ ``sparsity()``)."""
        total = sum(p.numel() for p in self.params.values())
        return sum((p == 0).sum().item() for p in self.params.values()) / max(total, 1)

    def report(self) -> pd.DataFrame:
        """Per-weight sparsity: name, block, numel, target, masked fraction, zero fraction."""
        targets = self.layer_targets(self.scheduled_sparsity(self._last_step))
        return pd.DataFrame([{
            "weight": n, "block": _block_index(n), "numel": p.numel(), "target": targets[n],
            "sparsity": (~self.masks[n]).float().mean().item(), "zeros": (p == 0).float().mean().item(),
        } for n, p in self.params.items()])

    # ------------------------------------------------------------------ schedules and targets

    def scheduled_sparsity(self, step: int) -> float:
        c = self.config
        if c.strategy == "dense":
            return 0.0
        if c.strategy in ("static", "set", "rigl") or step >= c.end_step:
            return c.target_sparsity
        if step < c.start_step:
            return 0.0
        u = (step - c.start_step) / max(1, c.end_step - c.start_step)
        if c.strategy == "gmp":
            return c.target_sparsity * (1.0 - (1.0 - u) ** 3)
        return c.target_sparsity * (1.0 - math.exp(-c.decay_rate * u)) / (1.0 - math.exp(-c.decay_rate))

    def layer_targets(self, sparsity: float) -> dict[str, float]:
        """Uniform per-layer targets, or for ``resonance`` the depth curve normalised to keep the global value."""
        if self.config.strategy != "resonance":
            return {n: sparsity for n in self.params}
        exponent = 1.0 / (self.config.depth_gradient_exponent + self.config.curvature_exponent)
        f = {n: (_block_index(n) + 1) ** exponent for n in self.params}
        numel = {n: p.numel() for n, p in self.params.items()}
        mean_f = sum(f[n] * numel[n] for n in f) / sum(numel.values())
        targets = {n: sparsity * f[n] / mean_f for n in f}
        worst = max(targets.values(), default=0.0)
        if worst >= 1.0:
            raise ValueError(f"the depth ramp asks a layer for sparsity {worst:.3f} >= 1 at target {sparsity}; "
                             "raise depth_gradient_exponent + curvature_exponent or lower target_sparsity")
        return targets

    def revive_fraction(self, step: int) -> float:
        c = self.config
        return c.revive_ratio * (1.0 + c.wave_amplitude * math.sin(2 * math.pi * step / c.wave_period))

    def drop_fraction(self, step: int) -> float:
        stop = self.config.stop_step or max(self.config.end_step, 1)
        return self.config.drop_fraction * 0.5 * (1.0 + math.cos(math.pi * min(step, stop) / stop))

    def is_update_step(self, step: int) -> bool:
        c = self.config
        if c.strategy in ("dense", "static") or step < c.start_step:
            return False
        if c.stop_step is not None and step > c.stop_step:
            return False
        return (step - c.start_step) % c.update_interval == 0

    # ------------------------------------------------------------------ strategies

    def _keep_top(self, score: torch.Tensor, n_keep: int) -> torch.Tensor:
        mask = torch.zeros(score.numel(), dtype=torch.bool, device=score.device)
        if n_keep > 0:
            mask[torch.topk(score.flatten(), n_keep, sorted=False).indices] = True
        return mask.view_as(score)

    def _random_masks(self, sparsity: float) -> None:
        for n, p in self.params.items():
            score = torch.rand(p.shape, generator=self.generator).to(p.device)
            self.set_mask(n, self._keep_top(score, round(p.numel() * (1 - sparsity))))

    @torch.no_grad()
    def update(self, step: int) -> None:
        """One mask update of the configured strategy at ``step``, then enforce the masks."""
        self._last_step = step
        strategy = self.config.strategy
        if strategy == "gmp":
            for n, p in self.params.items():
                target = self.scheduled_sparsity(step)
                score = p.abs().masked_fill(~self.masks[n], -1.0)  # pruned stays pruned
                self.set_mask(n, self._keep_top(score, round(p.numel() * (1 - target))))
        elif strategy in ("set", "rigl"):
            self._drop_and_grow(step, use_gradient=strategy == "rigl")
        elif strategy == "resonance":
            self._prune_and_revive(step)
        self.apply()
        self.cycles += 1

    def _drop_and_grow(self, step: int, use_gradient: bool) -> None:
        for n, p in self.params.items():
            mask = self.masks[n]
            active = int(mask.sum())
            n_swap = int(self.drop_fraction(step) * active)
            if n_swap == 0:
                continue
            keep = self._keep_top(p.abs().masked_fill(~mask, -1.0), active - n_swap)  # drop the smallest
            if use_gradient and n in self._grad_scores:
                score = self._grad_scores[n].clone()
            else:
                score = torch.rand(p.shape, generator=self.generator).to(p.device)
            score = score.masked_fill(mask, -1.0)  # regrow only where the weight was inactive
            grow = self._keep_top(score, n_swap)
            p.masked_fill_(grow, 0.0)  # regrown weights start at zero
            self.set_mask(n, keep | grow)
        self._grad_scores = {}

    def _prune_and_revive(self, step: int) -> None:
        c = self.config
        targets = self.layer_targets(self.scheduled_sparsity(step))
        rho = self.revive_fraction(step)
        meta = c.etch_memory and self.etch_graph.number_of_nodes() > 0 and \
            torch.rand(1, generator=self.generator).item() < c.memory_revive_prob
        meta_layer = None
        if meta:
            nodes = sorted(self.etch_graph.nodes)
            meta_layer, meta_row = nodes[int(torch.randint(len(nodes), (1,), generator=self.generator))]
        self.revived_last = 0
        for n, p in self.params.items():
            over = targets[n] / (1.0 - rho) if targets[n] > 0 else 0.0
            if over >= 1.0:
                raise ValueError(f"revive fraction {rho:.3f} at step {step} cannot hold layer {n} at sparsity "
                                 f"{targets[n]:.3f}: need revive_ratio·(1 + wave_amplitude) < 1 − target")
            n_keep = round(p.numel() * (1 - over))
            keep = self._keep_top(p.abs(), n_keep)
            pruned = ~keep
            n_target_keep = round(p.numel() * (1 - targets[n]))
            n_revive = min(max(n_target_keep - n_keep, 0), int(pruned.sum()))
            values = p[pruned]
            mu = values.mean().item() if values.numel() else 0.0
            sigma = (values.std().item() if values.numel() > 1 else 0.0) + c.noise_floor
            if c.etch_memory:
                self._etch(n, pruned, step, mu, sigma)
            if c.twist_mode:
                mu = -mu  # the Möbius second pass: revive on the other side
            score = torch.rand(p.shape, generator=self.generator).to(p.device)
            if meta and n == meta_layer:  # meta-revival: the ceased unit's row goes first
                score[meta_row] += 1.0
                self.etch_graph.remove_node((meta_layer, meta_row))
            revive = self._keep_top(score.masked_fill(keep, -1.0), n_revive)
            draws = torch.randn(int(revive.sum()), generator=self.generator).to(p.device) * sigma + mu
            p.masked_fill_(pruned, 0.0)
            p[revive] = draws.to(p.dtype)
            self.set_mask(n, keep | revive)
            self.revived_last += int(revive.sum())

    def _etch(self, name: str, pruned: torch.Tensor, step: int, mu: float, sigma: float) -> None:
        """Add output units whose whole row the magnitude pass pruned to the etch graph; join units of one
        block that ceased in the same cycle."""
        ceased_rows = pruned.all(dim=1).nonzero().flatten().tolist()
        block = _block_index(name)
        new = []
        for row in ceased_rows:
            node = (name, row)
            if node not in self.etch_graph:
                self.etch_graph.add_node(node, block=block, step=step, mean=mu, std=sigma)
                new.append(node)
        peers = [v for v, d in self.etch_graph.nodes(data=True) if d["block"] == block and d["step"] == step]
        self.etch_graph.add_edges_from((a, b) for a in new for b in peers if a != b)

    # ------------------------------------------------------------------ state for checkpoints

    def state_dict(self) -> dict:
        """The schedule's state: random stream, cycle count, etch graph (as JSON). The masks are not here:
        they are the model's buffers and travel in ``model.state_dict()``."""
        etch = {"nodes": [[name, row, d] for (name, row), d in self.etch_graph.nodes(data=True)],
                "edges": [[*a, *b] for a, b in self.etch_graph.edges()]}
        return {"generator": self.generator.get_state(), "cycles": self.cycles, "last_step": self._last_step,
                "etch": json.dumps(etch)}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.cycles, self._last_step = state["cycles"], state["last_step"]
        etch = json.loads(state["etch"])
        self.etch_graph = nx.Graph()
        self.etch_graph.add_nodes_from(((name, row), d) for name, row, d in etch["nodes"])
        self.etch_graph.add_edges_from(((a, i), (b, j)) for a, i, b, j in etch["edges"])


class SparsityCallback(Callback):
    """Hooks a ``Sparsifier`` into the trainer: masks gradients before clipping (after RigL has read
    them), updates masks on schedule, enforces masks after every optimizer step, reports sparsity."""

    def __init__(self, sparsifier: Sparsifier):
        self.sparsifier = sparsifier

    def on_train_start(self, state: TrainState) -> None:
        self.sparsifier.optimizer = state.optimizer
        self.sparsifier.apply(state.optimizer)

    def on_after_backward(self, state: TrainState) -> None:
        s = self.sparsifier
        if s.config.strategy == "rigl" and s.is_update_step(state.step + 1):
            s._grad_scores = {n: p.grad.abs().clone() for n, p in s.params.items() if p.grad is not None}
        s.mask_gradients()

    def on_step_end(self, state: TrainState) -> None:
        s = self.sparsifier
        if s.is_update_step(state.step):
            s.update(state.step)
        else:
            s.apply(state.optimizer)

    def on_eval(self, state: TrainState, metrics: dict) -> None:
        metrics["sparsity"] = self.sparsifier.sparsity()
        metrics["weight_sparsity"] = self.sparsifier.weight_sparsity()
        report = self.sparsifier.report()
        metrics["max_layer_sparsity"] = report["sparsity"].max() if len(report) else 0.0

    def state_dict(self) -> dict:
        return self.sparsifier.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sparsifier.load_state_dict(state)


def sparsify(model: nn.Module, config: SparsityConfig | None = None, **changes) -> SparsityCallback:
    """Attach a sparsifier to ``model`` and return the trainer callback:
    ``train(model, data, cfg, callbacks=[sparsify(model, strategy="rigl")])``."""
    config = dataclasses.replace(config or SparsityConfig(), **changes)
    return SparsityCallback(Sparsifier(model, config))


# ---------------------------------------------------------------------- the seeds' own rule, for comparison


SOURCE_THRESHOLD = 5 * 8.49e-6  # the seeds' prune threshold: 5 × MIN_TENSION
SOURCE_NOISE_RATIO = 0.73  # EMERGENCE_NOISE_RATIO: the revive draw's std grows by 0.73·|mean|


def block_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights the seeds' rule touches: every parameter of more than one dimension inside the blocks."""
    return {n: p for n, p in model.named_parameters() if p.dim() > 1 and n.startswith("blocks.")}


def zero_fraction(model: nn.Module) -> float:
    """Fraction of exactly-zero entries among ``block_weights``."""
    weights = list(block_weights(model).values())
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def magnitude_threshold(model: nn.Module, sparsity: float) -> float:
    """The magnitude below which a fraction ``sparsity`` of ``block_weights`` lies now (to give the seeds' rule a
    threshold that reaches a target at its first cycle)."""
    check_float("sparsity", sparsity, 0.0, 1.0, high_open=True)
    flat = torch.cat([w.detach().abs().flatten() for w in block_weights(model).values()])
    return float(flat.kthvalue(max(1, round(sparsity * flat.numel()))).values)


class SourceRuleCallback(Callback):
    """The seeds' prune/revive rule as their public code writes it, in our trainer, so a notebook can *show* what
    it does (it is not a strategy of the mask engine: it keeps no mask, which is the point).

    Every ``interval`` steps, after the optimizer step, for each block l (0-based) and each of its 2-D weights W:

    * prune: W[|W| < τ_l] ← 0 with τ_l = ``threshold`` · e^{−10⁻⁵·c} · (l+1)^{1/(g + κ)} (c: the cycle count;
      g = 10, κ = ``curvature_exponent``), remembering the mean μ and std σ of the values it zeroed;
    * revive: each zero entry, with probability ``revive_ratio``, is redrawn from N(μ, σ + 0.73·|μ|).

    Nothing masks the gradients or the optimizer's moments, so under Adam a zeroed weight moves off zero at the
    next step. ``revive_in_place=False`` does what the public code does — ``param[mask].normal_(…)`` draws into
    the copy that boolean indexing returns — so nothing is revived; True writes the draw into the weight (what
    the code means). ``history`` holds, per cycle, the zero fraction just before the cycle (what the weights
    regrew to since the last one), after the prune and after the revive.

    One simplification: in the source the attention layer and its block each own a pruner, so the attention
    weights are pruned and revived twice per cycle (the second prune finds little new to zero); here every
    weight gets one pass.
    """

    def __init__(self, model: nn.Module, interval: int, threshold: float = SOURCE_THRESHOLD,
                 revive_ratio: float = 1.0 - SOURCE_NOISE_RATIO, revive_in_place: bool = False,
                 curvature_exponent: float = 0.0, seed: int = 0):
        self.interval = check_int("interval", interval)
        self.threshold = check_float("threshold", threshold, 0.0, low_open=True)
        self.revive_ratio = check_float("revive_ratio", revive_ratio, 0.0, 1.0)
        self.revive_in_place = check_bool("revive_in_place", revive_in_place)
        self.curvature_exponent = check_float("curvature_exponent", curvature_exponent, 0.0)
        self.model, self.cycles, self.history = model, 0, []
        self.generator = torch.Generator().manual_seed(check_int("seed", seed, low=0))
        if not block_weights(model):
            raise ValueError("the model has no 2-D weights under 'blocks.' for the seeds' rule to prune")

    def cycle(self, step: int) -> None:
        """One prune-and-revive pass over every block (the seeds' ``prune_and_revive_cycle``)."""
        self.cycles += 1
        record = {"step": step, "cycle": self.cycles, "zero_before": zero_fraction(self.model)}
        decay = math.exp(-0.01 * self.cycles * 0.001)  # PRUNE_DECAY_RATE · step · ENTROPY_FACTOR
        etched = {}
        with torch.no_grad():
            for name, weight in block_weights(self.model).items():
                curvature = (_block_index(name) + 1) ** (1.0 / (10.0 + self.curvature_exponent))
                pruned = weight.abs() < self.threshold * decay * curvature
                if pruned.any():
                    values = weight[pruned]
                    std = float(values.std()) if values.numel() > 1 else float("nan")
                    etched[name] = (float(values.mean()), std if std > 0 else 1e-4)
                    weight[pruned] = 0.0
            record["zero_after_prune"] = zero_fraction(self.model)
            for name, (mean, std) in etched.items():
                weight = block_weights(self.model)[name]
                chosen = (torch.rand(weight.shape, generator=self.generator) < self.revive_ratio).to(weight.device)
                chosen &= weight == 0
                draw = torch.randn(int(chosen.sum()), generator=self.generator).to(weight) * (
                    std + SOURCE_NOISE_RATIO * abs(mean)) + mean
                if self.revive_in_place:
                    weight[chosen] = draw
                else:
                    weight[chosen].copy_(draw)  # into the copy boolean indexing returns: the public code's no-op
        record["zero_after_revive"] = zero_fraction(self.model)
        self.history.append(record)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.interval == 0:
            self.cycle(state.step)

    def on_eval(self, state: TrainState, metrics: dict) -> None:
        metrics["zero_fraction"] = zero_fraction(self.model)

    def state_dict(self) -> dict:
        return {"cycles": self.cycles, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.cycles, self.history = state["cycles"], list(state["history"])


# ---------------------------------------------------------------------- compressed checkpoints


def export_compressed(model: nn.Module) -> bytes:
    """A state dict in which every masked weight is stored as a bitmask (1 bit per entry) and its kept
    values (fp32); everything else, dense. Mask buffers are not stored twice."""
    sparsifier = getattr(model, "sparsifier", None)
    masks = sparsifier.masks if sparsifier is not None else {}
    mask_buffers = {f"{n}_mask" for n in masks}
    state = {}
    for key, tensor in model.state_dict().items():
        if key in mask_buffers:
            continue
        if key in masks:
            mask = masks[key].cpu()
            state[key] = {"shape": tuple(tensor.shape),
                          "bits": torch.from_numpy(np.packbits(mask.flatten().numpy())),
                          "values": tensor.detach().cpu()[mask].clone()}
        else:
            state[key] = tensor.detach().cpu().clone()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def import_compressed(model: nn.Module, blob: bytes) -> None:
    """Load what ``export_compressed`` wrote into ``model`` (masks too, where the model has mask buffers).
    Loaded with ``weights_only=True``: a crafted blob cannot run code (it raises ``pickle.UnpicklingError``)."""
    state = torch.load(io.BytesIO(blob), weights_only=True)
    buffers = model.state_dict()
    dense = {}
    for key, value in state.items():
        if isinstance(value, dict):
            numel = math.prod(value["shape"])
            mask = torch.from_numpy(np.unpackbits(value["bits"].numpy())[:numel].astype(bool)).view(value["shape"])
            weight = torch.zeros(value["shape"], dtype=value["values"].dtype)
            weight[mask] = value["values"]
            dense[key] = weight
            if f"{key}_mask" in buffers:
                dense[f"{key}_mask"] = mask
        else:
            dense[key] = value
    model.load_state_dict(dense)
