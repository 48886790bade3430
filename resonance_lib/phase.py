"""Phase-coded attention: every token carries a phase vector, and attention scores gain a resonance bias.

From "The Resonance Transformer" README: a token has a semantic embedding and a phase vector
φ ∈ R^F (F = 32, init N(0, 0.3)); the phase is projected and blended into the input with a learnable
sigmoid gate (init 0.3); head h adds w_h · mean_f cos(φ_i,f − φ_j,f) to its scores (w_h init 0.1).
"Phonetic" initialisation gives every CMU-dictionary rhyme group a shared random phase plus N(0, 0.03).

**Fast form.** cos(a − b) = cos a cos b + sin a sin b, so with c_i = [cos φ_i, sin φ_i] / √F,

    mean_f cos(φ_i,f − φ_j,f) = c_i · c_j,

a rank-2F inner product. Appending c to every key and (w_h/scale)·c to every query makes
scale·(q'·k') = scale·(q·k) + w_h·c_i·c_j, so ``F.scaled_dot_product_attention`` computes the biased
scores without an S×S tensor; values are zero-padded to the same width so fused kernels stay usable.
``resonance_matrix`` is the explicit S×S reference, tested against the fast form.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import CausalSelfAttention, causal_softmax, merge_heads
from .checks import check_choice, check_float, check_int
from .component import Component
from .train import Callback, TrainState

PHASE_INITS = ("random", "phonetic")
PHASE_EMBEDDINGS = ("phase", "phase_source")  # the embedding slot's values that give tokens phases


def resonance_matrix(phases: torch.Tensor) -> torch.Tensor:
    """R[i, j] = mean_f cos(φ_i,f − φ_j,f) for phases of shape (…, S, F): the explicit (…, S, S) form."""
    return torch.cos(phases[..., :, None, :] - phases[..., None, :, :]).mean(-1)


def phase_features(phases: torch.Tensor) -> torch.Tensor:
    """c = [cos φ, sin φ] / √F, so that c_i · c_j = mean_f cos(φ_i − φ_j)."""
    return torch.cat([torch.cos(phases), torch.sin(phases)], dim=-1) / math.sqrt(phases.shape[-1])


class PhaseEmbedding(Component):
    """x = (1 − g)·E_sem[t] + g·W_φ [cos φ_t, sin φ_t], g = sigmoid(b) (init ``blend_init``).

    ``forward(idx)`` returns ``(x, {"phases": φ})``: the vectors and the features that phase attention reads.
    The phase is projected through [cos φ, sin φ] so that the input, like the attention bias, sees φ only
    modulo 2π. ``init="random"`` draws φ ~ N(0, phase_std²); ``init="phonetic"`` gives every rhyme group of
    ``vocab`` (the tokenizer's tokens) a shared phase (``phonetic_phase_init``, seeded from torch's generator).
    """

    def __init__(self, vocab_size: int, n_embd: int, n_frequencies: int = 32, blend_init: float = 0.3,
                 phase_std: float = 0.3, init: str = "random", vocab: list[str] | None = None):
        super().__init__()
        check_int("n_frequencies", n_frequencies)
        check_float("blend_init", blend_init, 0.0, 1.0, low_open=True, high_open=True)
        check_float("phase_std", phase_std, 0.0)
        check_choice("phase_init", init, PHASE_INITS)
        if init == "phonetic" and (vocab is None or len(vocab) != vocab_size):
            raise ValueError(f"phase_init='phonetic' needs vocab=<the tokenizer's {vocab_size} tokens>; got "
                             f"{None if vocab is None else len(vocab)}")
        self.semantic = nn.Embedding(vocab_size, n_embd)
        self.phase = nn.Embedding(vocab_size, n_frequencies)  # an embedding: no weight decay, sparse lookup
        self.project = nn.Linear(2 * n_frequencies, n_embd, bias=False)
        self.blend_logit = nn.Parameter(torch.zeros(()))
        self.phase_std, self.blend_init, self.init, self.vocab = phase_std, blend_init, init, vocab
        self.reset_parameters()

    @property
    def token_weight(self) -> nn.Parameter:
        """The semantic embedding matrix, which a language model's head shares."""
        return self.semantic.weight

    def reset_parameters(self) -> None:
        """Phases by ``init`` (the phonetic table's seed is drawn from torch's generator); blend to blend_init."""
        with torch.no_grad():
            if self.init == "phonetic":
                seed = int(torch.randint(2**31 - 1, (1,)).item())  # follows torch.manual_seed
                self.phase.weight.copy_(phonetic_phase_init(list(self.vocab), self.phase.weight.shape[1],
                                                            phase_std=self.phase_std, seed=seed))
            else:
                self.phase.weight.normal_(0.0, self.phase_std)
            self.blend_logit.fill_(math.log(self.blend_init / (1.0 - self.blend_init)))

    @property
    def blend(self) -> torch.Tensor:
        return torch.sigmoid(self.blend_logit)

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        phases = self.phase(idx)
        g = self.blend
        x = (1 - g) * self.semantic(idx) + g * self.project(torch.cat([torch.cos(phases), torch.sin(phases)], -1))
        return x, {"phases": phases}


class SourcePhaseEmbedding(PhaseEmbedding):
    """The source's own phase embedding (mbilokonsky/resonance ``test5.ipynb``, ``ResonanceEmbedding``), beside
    ours for comparison: x = (1 − g) ⊙ E_sem[t] + g ⊙ W_φ φ_t with a *per-dimension* gate g = sigmoid(b), b
    initialised at 0.3 itself (so g starts at sigmoid(0.3) ≈ 0.574, not 0.3), and the raw phase φ projected
    (so the input, unlike the attention bias, is not 2π-periodic in φ). The phases and their initialisation are
    ours (the same as the source's). Every layer's attention reads the same phases, as in the source."""

    def __init__(self, vocab_size: int, n_embd: int, n_frequencies: int = 32, blend_init: float = 0.3,
                 phase_std: float = 0.3, init: str = "random", vocab: list[str] | None = None):
        super().__init__(vocab_size, n_embd, n_frequencies, blend_init, phase_std, init, vocab)
        self.project = nn.Linear(n_frequencies, n_embd, bias=False)
        self.blend_logit = nn.Parameter(torch.zeros(n_embd))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Phases as ``PhaseEmbedding``; the gate's parameter b = blend_init (the source's ``resonance_blend``)."""
        super().reset_parameters()
        with torch.no_grad():
            self.blend_logit.fill_(self.blend_init)

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        phases = self.phase(idx)
        g = self.blend
        return (1 - g) * self.semantic(idx) + g * self.project(phases), {"phases": phases}


class PhaseResonanceAttention(CausalSelfAttention, Component):
    """Causal self-attention with scores q·k/√d_h + w_h·mean_f cos(φ_i − φ_j) (the fast form above); the
    phases come from the token embedding (``PhaseEmbedding``) as the feature ``phases``."""

    def __init__(self, n_embd: int, n_head: int, bias: bool = False, dropout: float = 0.0, w_init: float = 0.1):
        super().__init__(n_embd, n_head, bias, dropout)
        check_float("w_init", w_init)
        self.w_init = w_init
        self.head_weight = nn.Parameter(torch.empty(n_head))  # w_h
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """w_h = w_init for every head."""
        with torch.no_grad():
            self.head_weight.fill_(self.w_init)

    @staticmethod
    def _phases(features: dict) -> torch.Tensor:
        if features.get("phases") is None:
            raise ValueError("phase attention needs the token phases: build the model with embedding='phase' "
                             "(or pass phases=... from a PhaseEmbedding)")
        return features["phases"]

    def forward(self, x: torch.Tensor, **features) -> torch.Tensor:
        phases = self._phases(features)
        B, T, C = x.shape
        q, k, v = self.qkv(x)
        head_dim = C // self.n_head
        scale = 1.0 / math.sqrt(head_dim)
        c = phase_features(phases)[:, None]  # (B, 1, T, 2F), shared by the heads
        w = self.head_weight.view(1, -1, 1, 1).to(q.dtype)
        q = torch.cat([q, (w / scale) * c.to(q.dtype).expand(-1, self.n_head, -1, -1)], dim=-1)
        k = torch.cat([k, c.to(k.dtype).expand(-1, self.n_head, -1, -1)], dim=-1)
        v = F.pad(v, (0, c.shape[-1]))  # same width as q and k; the padding is sliced off below
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=True, scale=scale)[..., :head_dim]
        return self.resid_dropout(self.c_proj(merge_heads(y)))

    def forward_reference(self, x: torch.Tensor, **features) -> torch.Tensor:
        """The reference: build the S×S scores, add w_h·R, mask, softmax (no dropout)."""
        phases = self._phases(features)
        q, k, v = self.qkv(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        scores = scores + self.head_weight.view(1, -1, 1, 1) * resonance_matrix(phases)[:, None]
        return self.c_proj(merge_heads(causal_softmax(scores) @ v))


# ---------------------------------------------------------------------- rhyme groups


def rhyme_key(word: str) -> str | None:
    """The rhyming part of the word's first CMU pronunciation (``pronouncing.rhyming_part``), or None."""
    import pronouncing

    phones = pronouncing.phones_for_word(word.lower())
    return pronouncing.rhyming_part(phones[0]) if phones else None


def rhyme_groups(words) -> dict[str, list[str]]:
    """Words grouped by rhyming part; words missing from the CMU dictionary are left out."""
    groups: dict[str, list[str]] = {}
    for word in words:
        key = rhyme_key(word)
        if key is not None:
            groups.setdefault(key, []).append(word)
    return groups


def phonetic_phase_init(words: list[str], n_frequencies: int = 32, phase_std: float = 0.3, noise: float = 0.03,
                        seed: int = 0) -> torch.Tensor:
    """A (len(words), F) phase table: one N(0, phase_std²) phase per rhyme group, shared by its words,
    plus N(0, noise²) per word; words outside the dictionary get their own N(0, phase_std²) phase.

    Refuses a character vocabulary (single-symbol tokens have no pronunciation to rhyme on)."""
    if words and sum(len(w) > 1 for w in words) < 0.5 * len(words):
        raise ValueError("phase_init='phonetic' needs a word-level vocabulary; this one is mostly single "
                         f"characters (e.g. {words[:8]}). Use tokenizer='word' or phase_init='random'.")
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(len(words), n_frequencies, generator=gen) * phase_std
    group_phase: dict[str, torch.Tensor] = {}
    for i, word in enumerate(words):
        key = rhyme_key(word) if word.isalpha() else None
        if key is None:
            continue
        if key not in group_phase:
            group_phase[key] = torch.randn(n_frequencies, generator=gen) * phase_std
        table[i] = group_phase[key] + torch.randn(n_frequencies, generator=gen) * noise
    return table


@torch.no_grad()
def phase_use(model: nn.Module) -> dict[str, float]:
    """How much a phase model uses its phases: ``phase_blend``, the embedding's blend g (its mean over dimensions
    in the source's per-dimension form), and ``w_abs_L<i>``, the mean |w_h| over the heads of layer i's phase bias."""
    use = {"phase_blend": model.wte.blend.mean().item()}
    for i, block in enumerate(model.blocks):
        use[f"w_abs_L{i}"] = block.attn.head_weight.abs().mean().item()
    return use


class PhaseProbe(Callback):
    """Adds ``phase_use`` (the learned blend g and each layer's mean |w_h|) to the trainer's eval rows."""

    def on_eval(self, state: TrainState, metrics: dict) -> None:
        metrics.update(phase_use(state.model))
