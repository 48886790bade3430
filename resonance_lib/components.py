"""The registry: each name an experiment may put in a ``ResonanceConfig`` slot → the builder of that part.

A model is made of slots — token embedding, position encoding, and in every block an attention, an MLP and a
residual rule (with the reader of the residual state) — plus an optional memory after the blocks and the
head. ``ResonanceLM`` asks this registry for each part by the name in its config and never branches on
names itself. Adding a component = its own module + one line here (and its name is then valid in the
config: ``ResonanceConfig`` validates every slot against these tables).

Every builder takes the ``ResonanceConfig`` (and, for token embeddings, the tokenizer's vocabulary).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import CausalSelfAttention
from .delta import DeltaResidual, WriteOnlyResidual, state_reader
from .halting import HaltingAttention
from .memory import ResonanceMemory
from .phase import PhaseEmbedding, PhaseResonanceAttention, SourcePhaseEmbedding
from .premanifest import PreManifestHead
from .prime import PrimeHilbertEncoder, PrimeMaskedLinear

# ------------------------------------------------------------------------------------ the plain parts


class TokenEmbedding(nn.Embedding):
    """A learned vector per token; ``forward(idx)`` returns ``(vectors, {})`` (no features)."""

    @property
    def token_weight(self) -> nn.Parameter:
        return self.weight

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, dict]:
        return super().forward(idx), {}


class LearnedPositions(nn.Embedding):
    """x + wpe(n): one learned vector per position (GPT-2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        if T > self.num_embeddings:
            raise ValueError(f"sequence length {T} exceeds block_size={self.num_embeddings}")
        return x + super().forward(torch.arange(T, device=x.device))


class MLP(nn.Module):
    """c_proj(GELU(c_fc(x))); ``linear`` builds both projections (``nn.Linear``, or a masked one)."""

    def __init__(self, n_embd: int, hidden: int, bias: bool = False, dropout: float = 0.0,
                 linear: Callable[..., nn.Linear] = nn.Linear):
        super().__init__()
        self.c_fc = linear(n_embd, hidden, bias=bias)
        self.c_proj = linear(hidden, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class AddResidual(nn.Module):
    """The standard residual connection: x ← x + f(h)."""

    def forward(self, state, update, v_in, context):
        return state + update


class LinearHead(nn.Module):
    """logits = h Eᵀ with the (tied) output matrix E."""

    def forward(self, h: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return F.linear(h, embedding)


# ------------------------------------------------------------------------------------ the registry

TOKEN_EMBEDDINGS = {
    "learned": lambda c, vocab: TokenEmbedding(c.vocab_size, c.n_embd),
    "phase": lambda c, vocab: PhaseEmbedding(c.vocab_size, c.n_embd, c.phase_frequencies, init=c.phase_init,
                                             vocab=vocab),
    "phase_source": lambda c, vocab: SourcePhaseEmbedding(c.vocab_size, c.n_embd, c.phase_frequencies,
                                                          init=c.phase_init, vocab=vocab),
}
ENCODERS = {
    "learned": lambda c: LearnedPositions(c.block_size, c.n_embd),
    "prime": lambda c: PrimeHilbertEncoder(c.n_embd, c.primes, c.block_size),
}
ATTENTIONS = {
    "standard": lambda c: CausalSelfAttention(c.n_embd, c.n_head, c.bias, c.dropout),
    "phase": lambda c: PhaseResonanceAttention(c.n_embd, c.n_head, c.bias, c.dropout),
    "halting": lambda c: HaltingAttention(c.n_embd, c.n_head, c.bias, c.halting_max_iters, c.halting_epsilon,
                                           fused=c.halting_fused),
}
FFN_MASKS = {
    "none": lambda c: MLP(c.n_embd, c.mlp_hidden, c.bias, c.dropout),
    "prime": lambda c: MLP(c.n_embd, c.mlp_hidden, c.bias, c.dropout, linear=partial(PrimeMaskedLinear, primes=c.primes)),
}
RESIDUALS = {
    "add": lambda c: AddResidual(),
    "delta": lambda c: DeltaResidual(c.n_embd, c.delta_value_dim, beta_init=c.delta_beta_init,
                                     v_sigmoid=c.delta_v_sigmoid, fused=c.delta_fused, compiled=c.delta_compiled),
    "write": lambda c: WriteOnlyResidual(c.n_embd, c.delta_value_dim, beta_init=c.delta_beta_init,
                                         v_sigmoid=c.delta_v_sigmoid, fused=c.delta_fused,
                                         compiled=c.delta_compiled),  # no erase: the control
}
STATE_READERS = {  # what a sublayer reads from the residual state of each residual rule
    "add": lambda c: state_reader(c.n_embd, 1),
    "delta": lambda c: state_reader(c.n_embd, c.delta_value_dim, fused=c.delta_fused, compiled=c.delta_compiled),
    "write": lambda c: state_reader(c.n_embd, c.delta_value_dim, fused=c.delta_fused, compiled=c.delta_compiled),
}
MEMORIES = {False: lambda c: None, True: lambda c: ResonanceMemory(c.n_embd, c.memory_slots)}
HEADS = {
    "linear": lambda c: LinearHead(),
    "premanifest": lambda c: PreManifestHead(c.n_embd, c.premanifest_max_iters, c.premanifest_epsilon),
}

# The config field each table answers, for validation and for readers of the config.
SLOTS = {"embedding": TOKEN_EMBEDDINGS, "encoder": ENCODERS, "attention": ATTENTIONS, "ffn_mask": FFN_MASKS,
         "residual": RESIDUALS, "memory": MEMORIES, "head": HEADS}
