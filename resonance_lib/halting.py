"""Entropy-halting attention: attention iterated on a changing state, each token stopping when its attention
is confident — the "Semantic Resonance LM" plan's halting loop, built as ACT (Graves 2016).

h_t = h_{t−1} + Attn(h_{t−1}), so q, k, v differ at every iteration (the plan's sketch recomputed the same
attention each time, so its iterations were identical). Token i halts with probability
p_t = sigmoid((ε − H_t(i)) / τ), H_t its attention entropy normalised by log(#visible keys) and averaged over
heads. Since H ≤ 1, a threshold ε > 1 also halts tokens whose attention is spread evenly, and ε ≥ 1 + 7τ halts
every token at the first pass (p > 0.999): ε ∈ (0, 2] spans the whole range from "never halts early" to "one
pass", which is what a compute sweep needs. The output is Σ_t p_t h_t with the remainder R given to the last iteration; the ponder cost N + R
(iterations used plus remainder, differentiable through R) is the component's auxiliary loss, which the host
weighs and adds to its training objective; ``last_iterations`` reports the iterations each token used.
Compute follows the iterations used, sequence by sequence: a pass runs only on the sequences that still have a
running token (sequences never attend to each other, so dropping a finished one changes nothing), and once
every token has halted no further pass is run. ``passes`` counts the passes of the last forward and
``sequence_passes`` the (sequence, pass) pairs computed, what the cost follows. Within a sequence, a token that
halted earlier than others still costs its share of each pass, because the tokens still running attend to its
state. ``skip_halted_sequences=False`` runs every sequence in every pass (same values; for tests and benchmarks).

With ``max_iters=1`` it is one standard attention pass (tested against ``CausalSelfAttention``).

Each pass needs the attention rows themselves (their entropy decides the halting), so it cannot use a fused SDPA
kernel. ``AttentionWithEntropy`` computes the output and the entropy as one autograd node with the backward
written out; ``attention_with_entropy_reference`` is the same thing in plain autograd (``fused=False``), and the
tests check that the two agree, gradients included.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .attention import (
    causal_mask,
    causal_softmax,
    entropy,
    merge_heads,
    normalise_causal_entropy,
    split_heads,
)
from .checks import check_bool, check_float, check_int
from .component import Component
from .train import Callback, TrainState


def attention_with_entropy_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
                                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """P = softmax(QKᵀ/√d_h + M) (causal), Y = P·V and each row's entropy H_i = −Σ_j P_ij log P_ij, in plain
    autograd. q, k, v: (B, H, T, d_h) → Y (B, H, T, d_h), H (B, H, T)."""
    probs = causal_softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]))
    return probs @ v, entropy(probs)


def _at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """fp16/bf16 as fp32; fp32 and fp64 as they are."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class AttentionWithEntropy(torch.autograd.Function):
    """``attention_with_entropy_reference`` as one autograd node. With S the scaled, masked scores, P = softmax(S),
    G = ∂L/∂Y, g = ∂L/∂H and P log P taken as 0 where P = 0:

        H = −Σ_j P log P,   ∂H/∂S_ij = −(P_ij log P_ij + P_ij H_i)   (since log P_ij = S_ij − logsumexp_j S_ij),
        ∂S = P ⊙ (G Vᵀ − rowsum(G ⊙ Y) − g H) − g (P log P),
        ∂Q = ∂S K/√d_h,   ∂K = ∂Sᵀ Q/√d_h,   ∂V = Pᵀ G.

    rowsum(G ⊙ Y) = Σ_j P_ij (G Vᵀ)_ij is read off the (T, d_h) output instead of the (T, T) rows, as in
    FlashAttention's backward. The rows are computed in fp32 whatever the inputs' precision (a bf16 softmax
    would blur the entropy the halting reads); Y and the gradients return in the inputs' dtypes. Tested
    against the reference (values, gradients, ``gradcheck``).
    """

    @staticmethod
    def forward(ctx, q, k, v):
        ctx.dtypes = (q.dtype, k.dtype, v.dtype)
        q, k, v = (_at_least_fp32(t) for t in (q, k, v))  # the rows and their entropy in fp32 (or fp64)
        with torch.autocast(q.device.type, enabled=False):
            scale = 1.0 / math.sqrt(q.shape[-1])
            scores = torch.matmul(q, k.transpose(-2, -1)).mul_(scale)
            probs = scores.masked_fill_(~causal_mask(q.shape[-2], q.device), float("-inf")).softmax(-1)
            y = torch.matmul(probs, v)
            p_log_p = torch.special.xlogy(probs, probs)  # 0 where P = 0 (the masked future)
            h = p_log_p.sum(-1).neg_()
        ctx.save_for_backward(q, k, v, probs, p_log_p, y, h)
        ctx.scale = scale
        return y.to(ctx.dtypes[0]), h

    @staticmethod
    def backward(ctx, grad_y, grad_h):
        q, k, v, probs, p_log_p, y, h = ctx.saved_tensors
        grad_y, grad_h = grad_y.to(y.dtype), grad_h.to(h.dtype)
        with torch.autocast(q.device.type, enabled=False):
            grad_v = torch.matmul(probs.transpose(-2, -1), grad_y)
            row = (grad_y * y).sum(-1) + grad_h * h  # rowsum(G ⊙ Y) + g H, (B, H, T)
            grad_s = torch.matmul(grad_y, v.transpose(-2, -1)).sub_(row.unsqueeze(-1)).mul_(probs)
            grad_s.addcmul_(p_log_p, grad_h.unsqueeze(-1), value=-1.0)
            grad_q = torch.matmul(grad_s, k).mul_(ctx.scale)
            grad_k = torch.matmul(grad_s.transpose(-2, -1), q).mul_(ctx.scale)
        return tuple(g.to(dtype) for g, dtype in zip((grad_q, grad_k, grad_v), ctx.dtypes, strict=True))


def attention_with_entropy(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, fused: bool = True
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal attention's output and each row's entropy: ``AttentionWithEntropy`` or, ``fused=False``, the
    plain form."""
    if fused:
        return AttentionWithEntropy.apply(q, k, v)
    return attention_with_entropy_reference(q, k, v)


class HaltingAttention(Component):
    """Causal attention iterated on a changing state with ACT halting on normalised attention entropy."""

    def __init__(self, n_embd: int, n_head: int, bias: bool = False, max_iters: int = 4, epsilon: float = 0.5,
                 temperature: float = 0.05, skip_halted_sequences: bool = True, fused: bool = True):
        super().__init__()
        check_int("max_iters", max_iters)
        check_bool("skip_halted_sequences", skip_halted_sequences)
        check_bool("fused", fused)
        self.skip_halted_sequences, self.fused = skip_halted_sequences, fused
        check_float("epsilon", epsilon, 0.0, 2.0, low_open=True)  # H ∈ [0, 1]; ε > 1 halts even flat rows
        check_float("temperature", temperature, 0.0, low_open=True)
        self.n_head, self.max_iters, self.epsilon, self.temperature = n_head, max_iters, epsilon, temperature
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.last_iterations: torch.Tensor | None = None  # (B, T), iterations each token used
        self.ponder_cost: torch.Tensor | None = None  # mean over tokens of N + R (differentiable through R)
        self.passes = 0  # attention passes the last forward ran
        self.sequence_passes = 0  # (sequence, pass) pairs the last forward computed

    def attend(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One attention pass: the update and each token's normalised entropy (mean over heads)."""
        C = h.shape[-1]
        q, k, v = (split_heads(t, self.n_head) for t in self.c_attn(h).split(C, 2))
        y, row_entropy = attention_with_entropy(q, k, v, fused=self.fused)
        return self.c_proj(merge_heads(y)), normalise_causal_entropy(row_entropy).mean(1)

    def forward(self, x: torch.Tensor, **features) -> torch.Tensor:
        h, out = x, torch.zeros_like(x)
        halted = torch.zeros(x.shape[:2], device=x.device, dtype=x.dtype)  # Σ p so far
        iterations = torch.zeros_like(halted)
        remainder = torch.zeros_like(halted)
        passes = sequence_passes = 0
        for t in range(self.max_iters):
            running = halted < 1.0 - 1e-3  # (B, T): tokens still running
            live = running.any(-1) if t > 0 else None  # sequences with a running token (all of them at first)
            n_live = int(live.sum()) if t > 0 else x.shape[0]
            if n_live == 0:
                break  # every token has halted: later passes would add nothing (p_used = 0), so they are skipped
            if n_live == x.shape[0] or not self.skip_halted_sequences:
                update, entropy = self.attend(h)
            else:  # only the live sequences: a finished one's h no longer reaches the output
                rows = live.nonzero().squeeze(-1)
                live_update, live_entropy = self.attend(h.index_select(0, rows))
                update = h.new_zeros(h.shape).index_copy(0, rows, live_update)
                entropy = live_entropy.new_zeros(h.shape[:2]).index_copy(0, rows, live_entropy)
            passes += 1
            sequence_passes += n_live if self.skip_halted_sequences else x.shape[0]
            h = h + update  # the state changes, so the next pass attends differently
            running = running.to(x.dtype)
            p = torch.sigmoid((self.epsilon - entropy) / self.temperature)
            if t == self.max_iters - 1:
                p = torch.ones_like(p)
            finishing = running * ((halted + p) >= 1.0 - 1e-3).to(x.dtype)
            p_used = running * torch.where(finishing.bool(), 1.0 - halted, p)
            remainder = remainder + finishing * (1.0 - halted)
            out = out + p_used[..., None] * h
            halted = halted + p_used
            iterations = iterations + running
        self.passes, self.sequence_passes = passes, sequence_passes
        self.last_iterations = iterations.detach()
        self.ponder_cost = (iterations + remainder).mean()
        return out - x  # Σ_t p_t (h_t − h_0): the sublayer's update

    def auxiliary_losses(self) -> dict[str, torch.Tensor]:
        return {"ponder": self.ponder_cost} if self.ponder_cost is not None else {}


def halting_counts(model: nn.Module) -> dict[str, float]:
    """What the halting layers of ``model`` did in its last forward: ``mean_iterations`` (iterations per token,
    mean over tokens and layers), ``mean_passes`` (attention passes run, mean over layers) and
    ``mean_sequence_passes`` (passes per sequence, mean over layers: what the compute follows). Empty for a model
    without halting layers."""
    layers = [m for m in model.modules() if isinstance(m, HaltingAttention) and m.last_iterations is not None]
    if not layers:
        return {}
    return {"mean_iterations": float(torch.stack([m.last_iterations.mean() for m in layers]).mean()),
            "mean_passes": sum(m.passes for m in layers) / len(layers),
            "mean_sequence_passes": sum(m.sequence_passes / m.last_iterations.shape[0] for m in layers) / len(layers)}


@torch.no_grad()
def halting_use(model: nn.Module, batches) -> dict[str, float]:
    """``halting_counts`` of a trained model, averaged over ``batches`` (token-id tensors of one shape, e.g.
    validation batches of the training batch size: a pass is skipped only once every sequence of the batch has
    halted, so the passes depend on the batch). The model runs in eval mode; its mode is restored."""
    was_training = model.training
    model.eval()
    try:
        counts = []
        for x in batches:
            model(x)
            counts.append(halting_counts(model))
    finally:
        model.train(was_training)
    if not counts:
        raise ValueError("halting_use needs at least one batch; got none")
    return {name: sum(c[name] for c in counts) / len(counts) for name in counts[0]}


class HaltingProbe(Callback):
    """Adds ``halting_counts`` to the trainer's eval rows: what the halting layers did on the last evaluation
    batch (``mean_iterations``, ``mean_passes``, ``mean_sequence_passes``)."""

    def on_eval(self, state: TrainState, metrics: dict) -> None:
        metrics.update(halting_counts(state.model))
