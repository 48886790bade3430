"""Prime-subspace position codes and prime resonance masks — the prime parts of the "Semantic Resonance
Language Model" plan, built to work.

**Prime Hilbert encoder.** The token embedding e is projected into one subspace per prime p (size p), and
each subspace gets a position code periodic in p: the real Fourier basis of Z_p,
u_p(n) = [1/√p, √(2/p) cos(2πkn/p), √(2/p) sin(2πkn/p)]_{k=1..(p−1)/2}, an orthonormal basis, so
u_p(n) = u_p(m) ⇔ n ≡ m (mod p). By the Chinese remainder theorem the concatenation over primes identifies
a position modulo ∏p (7·11·13·17·19 = 323,323 by default). z_p = W_p e + u_p(n); x = e + W_o [z_7, …, z_19].
Prime 2 is refused for the code: Z_2's basis is a constant and (−1)ⁿ, not a cos/sin pair.

**Prime resonance mask.** mask[i, j] = ∃p: (i − j) ≡ 0 (mod p); its density tends to 1 − ∏(1 − 1/p).
``PrimeMaskedLinear`` uses it as fixed structured sparsity. The plan's loop form is kept as the reference.

The plan's other parts have modules of their own: ``halting.py``, ``memory.py``, ``premanifest.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .component import Component

PRIMES = (7, 11, 13, 17, 19)


def check_primes(primes, smallest: int = 3) -> tuple[int, ...]:
    """Distinct primes, each >= ``smallest``: 3 for anything that builds a Fourier position code (the default,
    as ``ResonanceConfig.primes`` feeds the encoder), 2 for the mask alone."""
    primes = tuple(primes)
    if not primes:
        raise ValueError("primes must name at least one prime; got none")
    if len(set(primes)) != len(primes):
        raise ValueError(f"primes={list(primes)} has duplicates")
    bad = [p for p in primes if isinstance(p, bool) or not isinstance(p, int) or p < 2
           or any(p % d == 0 for d in range(2, int(p**0.5) + 1))]
    if bad:
        raise ValueError(f"primes={list(primes)}: {bad} are not prime; allowed: primes >= 3")
    if 2 in primes and smallest > 2:  # Z_2's real Fourier basis is one constant column plus (−1)^n: not the (p−1)/2 cos/sin pairs
        raise ValueError(f"primes={list(primes)} contains 2, which has no cos/sin pair in its Fourier code "
                         "(its subspace would carry no position); allowed: primes >= 3")
    return primes


def fourier_basis(p: int, positions: torch.Tensor) -> torch.Tensor:
    """The orthonormal real Fourier basis of Z_p evaluated at ``positions``: shape (len(positions), p)."""
    n = positions.to(torch.float64)[:, None]
    cols = [torch.full_like(n, 1.0 / math.sqrt(p))]
    for k in range(1, (p - 1) // 2 + 1):
        angle = 2 * math.pi * k * n / p
        cols += [math.sqrt(2.0 / p) * torch.cos(angle), math.sqrt(2.0 / p) * torch.sin(angle)]
    return torch.cat(cols, dim=1).to(torch.float32)


def prime_position_code(positions: torch.Tensor, primes=PRIMES) -> torch.Tensor:
    """[u_p(n)]_p concatenated: shape (len(positions), Σp)."""
    return torch.cat([fourier_basis(p, positions) for p in check_primes(primes)], dim=1)


class PrimeHilbertEncoder(Component):
    """x = e + W_o [W_p e + u_p(n)]_p: the position encoding of ``encoder="prime"`` (in place of e + wpe(n))."""

    def __init__(self, n_embd: int, primes=PRIMES, block_size: int = 1024):
        super().__init__()
        self.primes = check_primes(primes)
        self.project = nn.Linear(n_embd, sum(self.primes), bias=False)  # the W_p, stacked
        self.out = nn.Linear(sum(self.primes), n_embd, bias=False)
        self.register_buffer("code", prime_position_code(torch.arange(block_size), self.primes), persistent=False)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        T = embeddings.shape[1]
        if T > self.code.shape[0]:
            raise ValueError(f"sequence length {T} exceeds the encoder's block_size={self.code.shape[0]}")
        return embeddings + self.out(self.project(embeddings) + self.code[:T])


def prime_resonance_mask(rows: int, cols: int, primes=PRIMES) -> torch.Tensor:
    """mask[i, j] = any((i − j) mod p == 0 for p in primes), vectorised over i and j."""
    diff = torch.arange(rows, device="cpu")[:, None] - torch.arange(cols, device="cpu")[None, :]
    mask = torch.zeros(rows, cols, dtype=torch.bool, device="cpu")
    for p in check_primes(primes, smallest=2):
        mask |= diff.remainder(p) == 0
    return mask


def prime_resonance_mask_loop(rows: int, cols: int, primes=PRIMES) -> torch.Tensor:
    """The plan's O(rows·cols·P) Python loop, kept as the reference (and for the benchmark)."""
    mask = torch.zeros(rows, cols, dtype=torch.bool)
    for i in range(rows):
        for j in range(cols):
            mask[i, j] = any((i - j) % p == 0 for p in primes)
    return mask


class PrimeMaskedLinear(nn.Linear):
    """y = (W ⊙ M) x + b with the fixed prime resonance mask M (structured sparsity, ~64% zeros by default).

    W ⊙ M is formed once per weight update, not once per forward: a training step forms it in its one forward
    (through autograd), and forwards without gradients (evaluation, generation) reuse it until the weight
    changes (``masked_weight``)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, primes=PRIMES):
        super().__init__(in_features, out_features, bias=bias)
        mask = prime_resonance_mask(out_features, in_features, primes)
        self.n_masked = int((~mask).sum())  # entries held at zero: not usable parameters
        self.register_buffer("fixed_mask", mask)
        self._masked: tuple[tuple, torch.Tensor] | None = None  # (W's and M's identity and version, W ⊙ M)

    def masked_weight(self) -> torch.Tensor:
        """W ⊙ M; without gradients, kept until W or M changes (an optimizer step or an in-place edit bumps a
        tensor's version; moving the layer makes new tensors)."""
        if (torch.is_grad_enabled() and self.weight.requires_grad) or torch.compiler.is_compiling():
            self._masked = None  # (a compiled graph fuses the product into its kernels instead)
            return self.weight * self.fixed_mask
        key = tuple((t.data_ptr(), t._version, t.device, t.dtype) for t in (self.weight, self.fixed_mask))
        if self._masked is None or self._masked[0] != key:
            self._masked = (key, self.weight.detach() * self.fixed_mask)
        return self._masked[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.masked_weight(), self.bias)
