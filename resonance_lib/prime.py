"""Prime-subspace encoding, prime resonance masks, entropy-halting attention, a self-evolving memory and
the pre-manifest head — the parts of the "Semantic Resonance Language Model" plan, built to work.

**Prime Hilbert encoder.** The token embedding e is projected into one subspace per prime p (size p), and
each subspace gets a position code periodic in p: the real Fourier basis of Z_p,
u_p(n) = [1/√p, √(2/p) cos(2πkn/p), √(2/p) sin(2πkn/p)]_{k=1..(p−1)/2}, an orthonormal basis, so
u_p(n) = u_p(m) ⇔ n ≡ m (mod p). By the Chinese remainder theorem the concatenation over primes identifies
a position modulo ∏p (7·11·13·17·19 = 323,323 by default). z_p = W_p e + u_p(n); x = W_o [z_7, …, z_19].

**Prime resonance mask.** mask[i, j] = ∃p: (i − j) ≡ 0 (mod p); its density tends to 1 − ∏(1 − 1/p).

**Halting attention.** Attention applied repeatedly to a state that changes: h_t = h_{t−1} + Attn(h_{t−1}),
so q, k, v differ at every iteration (the plan's sketch recomputed the same attention each time). Token i
halts with probability p_t = sigmoid((ε − H_t(i)) / τ), H_t the attention entropy normalised by
log(#visible keys) and averaged over heads — ACT (Graves 2016): the output is Σ_t p_t h_t with the
remainder given to the last step, the ponder cost is N + R, and the iterations used are reported.

**Resonance memory** (the plan's HCW). q = key_net(h); cosine similarity to memory keys; softmax read of
memory values; an adapter maps the read to a residual update. With ``online_write`` the memory keeps
adapting at inference: each read moves the best-matching slot's value toward the context (EMA), in a buffer.

**Pre-manifest head.** Before emitting logits, refine the final state by attending over the vocabulary
embeddings, h ← h + softmax(W_q h · Eᵀ/√d) E, until the output distribution's normalised entropy is below ε
or ``max_iters`` refinements were made.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

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


class PrimeHilbertEncoder(nn.Module):
    """x = W_o [W_p e + u_p(n)]_p: replaces the learned position embedding (``encoder="prime"``)."""

    def __init__(self, n_embd: int, primes=PRIMES, block_size: int = 1024):
        super().__init__()
        self.primes = check_primes(primes)
        self.project = nn.Linear(n_embd, sum(self.primes), bias=False)  # the W_p, stacked
        self.out = nn.Linear(sum(self.primes), n_embd, bias=False)
        self.register_buffer("code", prime_position_code(torch.arange(block_size), self.primes), persistent=False)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        T = embeddings.shape[1]
        return self.out(self.project(embeddings) + self.code[:T])


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
    """y = (W ⊙ M) x + b with the fixed prime resonance mask M (structured sparsity, ~64% zeros by default)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, primes=PRIMES):
        super().__init__(in_features, out_features, bias=bias)
        mask = prime_resonance_mask(out_features, in_features, primes)
        self.n_masked = int((~mask).sum())  # entries held at zero: not usable parameters
        self.register_buffer("fixed_mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.fixed_mask, self.bias)


class HaltingAttention(nn.Module):
    """Causal attention iterated on a changing state with ACT halting on normalised attention entropy."""

    def __init__(self, n_embd: int, n_head: int, bias: bool = False, max_iters: int = 4, epsilon: float = 0.5,
                 temperature: float = 0.05):
        super().__init__()
        if max_iters < 1:
            raise ValueError(f"max_iters={max_iters} must be >= 1")
        if not 0 < epsilon <= 1:
            raise ValueError(f"epsilon={epsilon} must lie in (0, 1] (entropy is normalised to [0, 1])")
        if temperature <= 0:
            raise ValueError(f"temperature={temperature} must be > 0")
        self.n_head, self.max_iters, self.epsilon, self.temperature = n_head, max_iters, epsilon, temperature
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.last_iterations: torch.Tensor | None = None  # (B, T), iterations each token used
        self.ponder_cost: torch.Tensor | None = None  # mean over tokens of N + R (differentiable through R)

    def attend(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One attention pass: the update and each token's normalised entropy (mean over heads)."""
        B, T, C = h.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in self.c_attn(h).split(C, 2))
        causal = torch.ones(T, T, dtype=torch.bool, device=h.device).tril()
        probs = (q @ k.transpose(-2, -1) / math.sqrt(C // self.n_head)).masked_fill(~causal, float("-inf")).softmax(-1)
        entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1)  # (B, H, T)
        visible = torch.arange(1, T + 1, device=h.device, dtype=h.dtype)
        normalised = (entropy / torch.log(visible).clamp_min(1e-12)).mean(1)  # one visible key: entropy 0
        update = self.c_proj((probs @ v).transpose(1, 2).reshape(B, T, C))
        return update, normalised

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, out = x, torch.zeros_like(x)
        halted = torch.zeros(x.shape[:2], device=x.device, dtype=x.dtype)  # Σ p so far
        iterations = torch.zeros_like(halted)
        remainder = torch.zeros_like(halted)
        for t in range(self.max_iters):
            update, entropy = self.attend(h)
            h = h + update  # the state changes, so the next pass attends differently
            running = (halted < 1.0 - 1e-3).to(x.dtype)
            p = torch.sigmoid((self.epsilon - entropy) / self.temperature)
            if t == self.max_iters - 1:
                p = torch.ones_like(p)
            finishing = running * ((halted + p) >= 1.0 - 1e-3).to(x.dtype)
            p_used = running * torch.where(finishing.bool(), 1.0 - halted, p)
            remainder = remainder + finishing * (1.0 - halted)
            out = out + p_used[..., None] * h
            halted = halted + p_used
            iterations = iterations + running
        self.last_iterations = iterations.detach()
        self.ponder_cost = (iterations + remainder).mean()
        return out - x  # Σ_t p_t (h_t − h_0): the sublayer's update


class ResonanceMemory(nn.Module):
    """r = softmax(cos(key_net(h), K)/τ) V; returns adapter(r). ``online_write`` adapts V at inference."""

    def __init__(self, n_embd: int, n_slots: int = 64, key_dim: int = 32, temperature: float = 0.1,
                 online_write: bool = False, write_rate: float = 0.1):
        super().__init__()
        if n_slots < 1 or key_dim < 1:
            raise ValueError(f"n_slots={n_slots} and key_dim={key_dim} must be positive")
        if not 0 < write_rate <= 1:
            raise ValueError(f"write_rate={write_rate} must lie in (0, 1]")
        self.key_net = nn.Linear(n_embd, key_dim)
        self.keys = nn.Parameter(torch.randn(n_slots, key_dim))
        self.values = nn.Parameter(torch.randn(n_slots, n_embd) * 0.02)
        self.adapter = nn.Linear(n_embd, n_embd)
        self.register_buffer("written", torch.zeros(n_slots, n_embd))  # what online writes added to V
        self.temperature, self.online_write, self.write_rate = temperature, online_write, write_rate

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        sim = F.normalize(self.key_net(h), dim=-1) @ F.normalize(self.keys, dim=-1).T / self.temperature
        weights = sim.softmax(-1)
        read = weights @ (self.values + self.written)
        if self.online_write and not self.training:
            self.write(h, weights)
        return self.adapter(read)

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
        self.written.zero_()


class PreManifestHead(nn.Module):
    """Refine h by attending over the vocabulary embeddings E until the output entropy < ε (at most
    ``max_iters`` refinements), then logits = h Eᵀ."""

    def __init__(self, n_embd: int, max_iters: int = 3, epsilon: float = 0.5):
        super().__init__()
        if max_iters < 1:
            raise ValueError(f"max_iters={max_iters} must be >= 1")
        if not 0 < epsilon <= 1:
            raise ValueError(f"epsilon={epsilon} must lie in (0, 1]")
        self.query = nn.Linear(n_embd, n_embd, bias=False)
        self.max_iters, self.epsilon = max_iters, epsilon
        self.last_iterations: torch.Tensor | None = None

    def forward(self, h: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        iterations = torch.zeros(h.shape[:-1], device=h.device)
        log_vocab = math.log(embedding.shape[0])
        for _ in range(self.max_iters):
            probs = (h @ embedding.T).softmax(-1)
            entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1) / log_vocab
            active = entropy >= self.epsilon
            if not active.any():
                break
            attn = (self.query(h) @ embedding.T / math.sqrt(h.shape[-1])).softmax(-1)
            h = h + active[..., None].to(h.dtype) * (attn @ embedding)
            iterations = iterations + active.float()
        self.last_iterations = iterations
        return h @ embedding.T
