"""The pre-manifest head of the "Semantic Resonance LM" plan: before emitting logits, refine the final state
against the vocabulary.

While the output distribution softmax(h Eᵀ) of a position is uncertain — normalised entropy H/log|V| ≥ ε — the
position's state attends over the vocabulary embeddings E and moves toward what it reads,
h ← h + softmax(W_q h · Eᵀ/√d) E; at most ``max_iters`` refinements, then logits = h Eᵀ. Positions that are
already confident are left alone; ``last_iterations`` reports the refinements each position got.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .attention import entropy
from .checks import check_float, check_int
from .component import Component


class PreManifestHead(Component):
    """Refine h by attending over the vocabulary embeddings E until the output entropy < ε (at most
    ``max_iters`` refinements), then logits = h Eᵀ. ``forward(h, embedding)`` with E = ``embedding``."""

    def __init__(self, n_embd: int, max_iters: int = 3, epsilon: float = 0.5):
        super().__init__()
        check_int("max_iters", max_iters)
        check_float("epsilon", epsilon, 0.0, 1.0, low_open=True)
        self.query = nn.Linear(n_embd, n_embd, bias=False)
        self.max_iters, self.epsilon = max_iters, epsilon
        self.last_iterations: torch.Tensor | None = None

    def forward(self, h: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        iterations = torch.zeros(h.shape[:-1], device=h.device)
        log_vocab = math.log(embedding.shape[0])
        for _ in range(self.max_iters):
            active = entropy((h @ embedding.T).softmax(-1)) / log_vocab >= self.epsilon
            if not active.any():
                break
            attn = (self.query(h) @ embedding.T / math.sqrt(h.shape[-1])).softmax(-1)
            h = h + active[..., None].to(h.dtype) * (attn @ embedding)
            iterations = iterations + active.float()
        self.last_iterations = iterations
        return h @ embedding.T

    def forward_reference(self, h: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """The same rule, one position at a time."""
        log_vocab = math.log(embedding.shape[0])
        rows = []
        for state in h.reshape(-1, h.shape[-1]):
            for _ in range(self.max_iters):
                probs = (embedding @ state).softmax(0)
                if -(probs * torch.log(probs.clamp_min(1e-12))).sum() / log_vocab < self.epsilon:
                    break
                state = state + (embedding @ self.query(state) / math.sqrt(h.shape[-1])).softmax(0) @ embedding
            rows.append(embedding @ state)
        return torch.stack(rows).view(*h.shape[:-1], embedding.shape[0])
