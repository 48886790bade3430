"""Causal self-attention, and the pieces every attention variant shares (written once, used by all).

Standard attention is softmax(QKᵀ/√d_h + M)·V per head, with the causal mask M_ij = 0 for j ≤ i and −∞
otherwise. ``CausalSelfAttention.forward`` computes it with ``F.scaled_dot_product_attention`` (fused kernels
where available); ``forward_reference`` writes the softmax out, for tests and for reading.

Every attention module in this library has the signature ``forward(x, **features)``: ``x`` is the normalised
sublayer input (B, T, C), ``features`` what the model's token embedding provides beside the vectors (for
example ``phases``); a module uses the features it needs and ignores the rest.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def split_heads(t: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, C) → (B, H, T, C/H)."""
    B, T, C = t.shape
    return t.view(B, T, n_head, C // n_head).transpose(1, 2)


def merge_heads(y: torch.Tensor) -> torch.Tensor:
    """(B, H, T, d_h) → (B, T, H·d_h)."""
    B, H, T, D = y.shape
    return y.transpose(1, 2).contiguous().view(B, T, H * D)


def causal_mask(T: int, device=None) -> torch.Tensor:
    """M[i, j] = (j ≤ i): which keys query i may see."""
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def causal_softmax(scores: torch.Tensor) -> torch.Tensor:
    """softmax over keys of ``scores`` (…, T, T) with the future masked out."""
    T = scores.shape[-1]
    return scores.masked_fill(~causal_mask(T, scores.device), float("-inf")).softmax(-1)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """H = −Σ p log p over the last axis (0 log 0 taken as 0)."""
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1)


def normalise_causal_entropy(h: torch.Tensor) -> torch.Tensor:
    """H_i / log(#keys query i sees) for the entropies ``h`` (…, T) of causal attention rows: 0 for a one-hot
    row, 1 for a uniform one. Query 0 sees one key; its entropy is 0 and stays 0."""
    visible = torch.arange(1, h.shape[-1] + 1, device=h.device, dtype=h.dtype)
    return h / torch.log(visible).clamp_min(1e-12)


def normalised_entropy(probs: torch.Tensor) -> torch.Tensor:
    """The normalised entropy (``normalise_causal_entropy``) of causal attention rows ``probs`` (…, T, T)."""
    return normalise_causal_entropy(entropy(probs))


class CausalSelfAttention(nn.Module):
    """softmax(QKᵀ/√d_h + causal mask)·V per head, then the output projection ``c_proj``."""

    def __init__(self, n_embd: int, n_head: int, bias: bool = False, dropout: float = 0.0):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} is not divisible by n_head={n_head}")
        self.n_head, self.dropout = n_head, dropout
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)

    def qkv(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Queries, keys and values, each (B, H, T, d_h)."""
        return [split_heads(t, self.n_head) for t in self.c_attn(x).split(x.shape[-1], dim=2)]

    def forward(self, x: torch.Tensor, **features) -> torch.Tensor:
        q, k, v = self.qkv(x)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=True)
        return self.resid_dropout(self.c_proj(merge_heads(y)))

    def forward_reference(self, x: torch.Tensor, **features) -> torch.Tensor:
        """The same, written out: softmax(QKᵀ/√d_h + M)·V (no dropout)."""
        q, k, v = self.qkv(x)
        probs = causal_softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]))
        return self.c_proj(merge_heads(probs @ v))
