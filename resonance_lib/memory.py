"""The resonance memory — the "Semantic Resonance LM" plan's HCW self-evolving memory.

A key network maps the state to a query, q = key_net(h); its cosine similarity to each of the memory's keys,
divided by a temperature τ, gives softmax weights over slots; the read is r = softmax(cos(q, K)/τ)·V, and an
adapter maps it to a residual update: the host adds ``adapter(r)`` to its state.

With ``online_write`` the memory keeps adapting at inference: after each read, the slot that each context read
most moves its value toward the mean of those contexts, V_s ← V_s + η (h̄_s − V_s). The writes live in a
buffer (``written``), apart from the trained values, and ``reset_memory()`` forgets them.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checks import check_bool, check_float, check_int
from .component import Component


class ResonanceMemory(Component):
    """r = softmax(cos(key_net(h), K)/τ) V; returns adapter(r). ``online_write`` adapts V at inference."""

    def __init__(self, n_embd: int, n_slots: int = 64, key_dim: int = 32, temperature: float = 0.1,
                 online_write: bool = False, write_rate: float = 0.1):
        super().__init__()
        check_int("n_slots", n_slots)
        check_int("key_dim", key_dim)
        check_float("temperature", temperature, 0.0, low_open=True)
        check_bool("online_write", online_write)
        check_float("write_rate", write_rate, 0.0, 1.0, low_open=True)
        self.key_net = nn.Linear(n_embd, key_dim)
        self.keys = nn.Parameter(torch.empty(n_slots, key_dim))
        self.values = nn.Parameter(torch.empty(n_slots, n_embd))
        self.adapter = nn.Linear(n_embd, n_embd)
        self.register_buffer("written", torch.zeros(n_slots, n_embd))  # what online writes added to V
        self.temperature, self.online_write, self.write_rate = temperature, online_write, write_rate
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keys K ~ N(0, 1), values V ~ N(0, 0.02²); no online writes."""
        with torch.no_grad():
            self.keys.normal_()
            self.values.normal_().mul_(0.02)
        self.written.zero_()

    def weights(self, h: torch.Tensor) -> torch.Tensor:
        """softmax(cos(key_net(h), K)/τ) over slots, (…, n_slots)."""
        return (F.normalize(self.key_net(h), dim=-1) @ F.normalize(self.keys, dim=-1).T / self.temperature).softmax(-1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        weights = self.weights(h)
        read = weights @ (self.values + self.written)
        if self.online_write and not self.training:
            self.write(h, weights)
        return self.adapter(read)

    def forward_reference(self, h: torch.Tensor) -> torch.Tensor:
        """The read, one token at a time: r_t = Σ_s w_ts V_s with w_t = softmax_s(cos(q_t, K_s)/τ) (no writes)."""
        values = self.values + self.written
        flat = h.reshape(-1, h.shape[-1])
        reads = []
        for token in flat:
            q = self.key_net(token)
            sims = torch.stack([F.cosine_similarity(q, key, dim=0, eps=1e-12) for key in self.keys]) / self.temperature
            reads.append(sims.softmax(0) @ values)
        return self.adapter(torch.stack(reads).view(*h.shape[:-1], -1))

    @torch.no_grad()
    def write(self, h: torch.Tensor, weights: torch.Tensor) -> None:
        """Move each slot's value toward the mean context that read it most: V_s ← V_s + η (h̄_s − V_s)."""
        best = weights.reshape(-1, weights.shape[-1]).argmax(-1)
        flat = h.reshape(-1, h.shape[-1])
        for slot in best.unique():
            target = flat[best == slot].mean(0)
            current = self.values[slot] + self.written[slot]
            self.written[slot] += self.write_rate * (target - current)

    def reset_memory(self) -> None:
        """Forget every online write."""
        self.written.zero_()
