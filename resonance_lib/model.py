"""A nanoGPT-style decoder that every resonance component plugs into as a config switch.

With every switch at its default, ``ResonanceLM`` is the baseline: token + learned position embedding,
``n_layer`` pre-norm blocks ``x ← x + Attn(LN(x))``, ``x ← x + MLP(LN(x))``, a final LayerNorm and a
language-model head tied to the token embedding, initialised as nanoGPT does
(N(0, 0.02), residual projections N(0, 0.02/√(2·n_layer))). After Karpathy's nanoGPT ``model.py``.

Switches (each validated in ``ResonanceConfig``):
  residual="delta"   the Householder delta residual X ← X + β k (vᵀ − kᵀX) of ``delta.py`` replaces
                     x ← x + f(x); ``delta_value_dim`` > 1 widens the state to d×d_v.
  attention="phase"  ``phase.py``: a phase vector per token blended into the input, and a resonance bias
                     w_h·mean_f cos(φ_i − φ_j) on every head's scores (``phase_frequencies``, ``phase_init``).
  attention="halting" ``prime.py``: attention iterated on a changing state with ACT halting on attention
                     entropy (``halting_max_iters``, ``halting_epsilon``; ponder cost ``ponder_weight``).
  encoder="prime"    ``prime.py``: per-prime subspaces with Fourier position codes of Z_p replace the
                     learned position embedding (x = e + W_o[W_p e + u_p(n)]_p).
  memory=True        ``prime.py``: a resonance memory read after the blocks (``memory_slots``).
  head="premanifest" ``prime.py``: the final state is refined against the vocabulary before the logits.
  ffn_mask="prime"   ``prime.py``: the MLP weights carry the fixed prime resonance mask.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checks import check_bool, check_choice, check_float, check_int
from .delta import DeltaResidual, StateReader
from .phase import PhaseEmbedding, PhaseResonanceAttention, phonetic_phase_init
from .prime import (
    PRIMES,
    HaltingAttention,
    PreManifestHead,
    PrimeHilbertEncoder,
    PrimeMaskedLinear,
    ResonanceMemory,
    check_primes,
)

RESIDUALS = ("add", "delta")
ATTENTIONS = ("standard", "phase", "halting")
PHASE_INITS = ("random", "phonetic")
ENCODERS = ("learned", "prime")
HEADS = ("linear", "premanifest")
FFN_MASKS = ("none", "prime")

@dataclass
class ResonanceConfig:
    """Sizes of the model; the resonance switches are added beside them, each validated here."""

    vocab_size: int = 65
    block_size: int = 256
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.0
    bias: bool = False
    ffn_hidden: int | None = None  # hidden width of the MLP; None means 4·n_embd
    residual: str = "add"  # "add": x + f(x); "delta": X + β k (vᵀ − kᵀX)
    delta_value_dim: int = 1  # d_v of the delta state X ∈ R^{d×d_v}
    delta_beta_init: float = 1.0  # β at initialisation, in (0, 2)
    delta_v_sigmoid: bool = True  # v = 4·sigmoid(W_v h) (True) or W_v h (False)
    attention: str = "standard"  # "standard" | "phase" | "halting"
    phase_frequencies: int = 32  # F, the length of each token's phase vector
    phase_init: str = "random"  # "random": N(0, 0.3); "phonetic": shared phases per rhyme group
    halting_max_iters: int = 4
    halting_epsilon: float = 0.5  # halt where normalised attention entropy < ε
    ponder_weight: float = 0.01  # loss += ponder_weight · Σ_layers mean(N + R)
    encoder: str = "learned"  # "learned" | "prime"
    primes: tuple[int, ...] = PRIMES
    memory: bool = False
    memory_slots: int = 64
    head: str = "linear"  # "linear" | "premanifest"
    premanifest_max_iters: int = 3
    premanifest_epsilon: float = 0.5
    ffn_mask: str = "none"  # "none" | "prime"

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "delta_value_dim",
                     "phase_frequencies", "halting_max_iters", "memory_slots", "premanifest_max_iters"):
            check_int(name, getattr(self, name))
        for name, allowed in (("residual", RESIDUALS), ("attention", ATTENTIONS), ("phase_init", PHASE_INITS),
                              ("encoder", ENCODERS), ("head", HEADS), ("ffn_mask", FFN_MASKS)):
            check_choice(name, getattr(self, name), allowed)
        for name in ("bias", "memory", "delta_v_sigmoid"):
            check_bool(name, getattr(self, name))
        if self.ffn_hidden is not None:
            if isinstance(self.ffn_hidden, bool) or not isinstance(self.ffn_hidden, int) or self.ffn_hidden < 1:
                raise ValueError(f"ffn_hidden={self.ffn_hidden!r} must be a positive integer or None (4·n_embd)")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}; "
                f"allowed n_head values divide n_embd, e.g. {[h for h in range(1, 17) if self.n_embd % h == 0]}"
            )
        check_float("dropout", self.dropout, 0.0, 1.0, high_open=True)
        if self.residual == "add" and self.delta_value_dim != 1:
            raise ValueError(f"delta_value_dim={self.delta_value_dim} needs residual='delta' "
                             f"(got residual='add', which allows only delta_value_dim=1)")
        check_float("delta_beta_init", self.delta_beta_init, 0.0, 2.0, low_open=True, high_open=True)
        if self.attention != "phase" and self.phase_init != "random":
            raise ValueError(f"phase_init={self.phase_init!r} needs attention='phase' (got {self.attention!r})")
        self.primes = check_primes(self.primes, smallest=3 if self.encoder == "prime" else 2)
        for name in ("halting_epsilon", "premanifest_epsilon"):  # entropy is normalised to [0, 1]
            check_float(name, getattr(self, name), 0.0, 1.0, low_open=True)
        check_float("ponder_weight", self.ponder_weight, 0.0)

    @property
    def mlp_hidden(self) -> int:
        return self.ffn_hidden if self.ffn_hidden is not None else 4 * self.n_embd


class CausalSelfAttention(nn.Module):
    """softmax(QKᵀ/√d_h + causal mask)·V per head, through ``F.scaled_dot_product_attention``."""

    def __init__(self, config: ResonanceConfig):
        super().__init__()
        self.n_head, self.dropout = config.n_head, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """c_proj(GELU(c_fc(x))), hidden width ``config.mlp_hidden``."""

    def __init__(self, config: ResonanceConfig):
        super().__init__()
        if config.ffn_mask == "prime":
            self.c_fc = PrimeMaskedLinear(config.n_embd, config.mlp_hidden, config.bias, config.primes)
            self.c_proj = PrimeMaskedLinear(config.mlp_hidden, config.n_embd, config.bias, config.primes)
        else:
            self.c_fc = nn.Linear(config.n_embd, config.mlp_hidden, bias=config.bias)
            self.c_proj = nn.Linear(config.mlp_hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class AddResidual(nn.Module):
    """The standard residual connection: x ← x + f(h)."""

    def forward(self, state, update, v_in, context):
        return state + update


def make_residual(config: ResonanceConfig) -> nn.Module:
    if config.residual == "delta":
        return DeltaResidual(config.n_embd, config.delta_value_dim, beta_init=config.delta_beta_init,
                             v_sigmoid=config.delta_v_sigmoid)
    return AddResidual()


def make_reader(config: ResonanceConfig) -> nn.Module:
    """What a sublayer reads from the residual state: the state itself, or a d×d_v state compressed to d."""
    return StateReader(config.n_embd, config.delta_value_dim) if config.delta_value_dim > 1 else nn.Identity()


class Block(nn.Module):
    """Pre-norm block. For each sublayer f ∈ (Attn, MLP): h = read(x), x ← residual(x, f(LN(h))).

    With ``residual="add"`` this is x ← x + Attn(LN₁(x)); x ← x + MLP(LN₂(x)).
    """

    def __init__(self, config: ResonanceConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.read = make_reader(config)
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        if config.attention == "phase":
            self.attn = PhaseResonanceAttention(config.n_embd, config.n_head, config.bias, config.dropout)
        elif config.attention == "halting":
            self.attn = HaltingAttention(config.n_embd, config.n_head, config.bias, config.halting_max_iters,
                                         config.halting_epsilon)
        else:
            self.attn = CausalSelfAttention(config)
        self.res_1 = make_residual(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)
        self.res_2 = make_residual(config)

    def forward(self, x: torch.Tensor, phases: torch.Tensor | None = None) -> torch.Tensor:
        h = self.read(x)
        context = self.ln_1(h)
        update = self.attn(context) if phases is None else self.attn(context, phases)
        x = self.res_1(x, update, h, context)
        h = self.read(x)
        context = self.ln_2(h)
        return self.res_2(x, self.mlp(context), h, context)


class ResonanceLM(nn.Module):
    """Decoder-only language model; ``forward(idx, targets)`` returns ``(logits, loss)``.

    ``vocab`` (the tokenizer's ``itos``) is needed only for ``phase_init="phonetic"``.
    """

    sparsifier = None  # set by resonance_lib.sparsity.sparsify(model, ...)

    def __init__(self, config: ResonanceConfig, vocab: list[str] | None = None):
        super().__init__()
        self.config = config
        if config.attention == "phase":
            self.phase_embedding = PhaseEmbedding(config.vocab_size, config.n_embd, config.phase_frequencies)
            self.wte = self.phase_embedding.semantic
        else:
            self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        if config.encoder == "prime":
            self.prime_encoder = PrimeHilbertEncoder(config.n_embd, config.primes, config.block_size)
        else:
            self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.readout = make_reader(config)
        if config.memory:
            self.memory = ResonanceMemory(config.n_embd, config.memory_slots)
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        if config.head == "premanifest":
            self.premanifest = PreManifestHead(config.n_embd, config.premanifest_max_iters, config.premanifest_epsilon)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2: scale residual projections by 1/√(2·n_layer)
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
        for module in self.modules():
            if isinstance(module, DeltaResidual):
                module.reset_gates()  # the generic init above zeroed β's bias
        if config.attention == "phase":  # the generic init above overwrote the phase table
            table = None
            if config.phase_init == "phonetic":
                if vocab is None or len(vocab) != config.vocab_size:
                    raise ValueError(f"phase_init='phonetic' needs vocab=<the tokenizer's {config.vocab_size} "
                                     f"tokens>; got {None if vocab is None else len(vocab)}")
                seed = int(torch.randint(2**31 - 1, (1,)).item())  # follows torch.manual_seed
                table = phonetic_phase_init(list(vocab), config.phase_frequencies, seed=seed)
            self.phase_embedding.reset_phases(table)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size={self.config.block_size}")
        pos = torch.arange(T, device=idx.device)
        phases = None
        if self.config.attention == "phase":
            tok, phases = self.phase_embedding(idx)
        else:
            tok = self.wte(idx)
        x = self.drop(tok + self.prime_encoder(tok) if self.config.encoder == "prime" else tok + self.wpe(pos))
        if self.config.delta_value_dim > 1:  # the d×d_v state starts as d_v copies of the embedding
            x = x.unsqueeze(-1).repeat(1, 1, 1, self.config.delta_value_dim)
        for block in self.blocks:
            x = block(x, phases)
        x = self.readout(x)
        if self.config.memory:
            x = x + self.memory(x)
        if self.config.head == "premanifest":
            logits = self.premanifest(self.ln_f(x), self.lm_head.weight)
        else:
            logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:  # cross-entropy over scored positions; targets of -100 are ignored
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def auxiliary_losses(self) -> dict[str, torch.Tensor]:
        """Weighted auxiliary terms of the last forward pass, which training adds to the cross-entropy
        ``forward`` returns (reported in their own columns, never inside the loss):
        ``ponder`` = ``ponder_weight`` · Σ_layers mean(N + R) with halting attention."""
        if self.config.attention == "halting" and self.config.ponder_weight > 0:
            return {"ponder": self.config.ponder_weight * sum(b.attn.ponder_cost for b in self.blocks)}
        return {}

    def prune_and_revive_cycle(self, step: int | None = None) -> None:
        """One mask update of the attached sparsifier (``sparsity.sparsify(model, ...)``), called by hand
        as the seeds' READMEs do. Without ``step``, each call advances the schedule by one update interval."""
        if self.sparsifier is None:
            raise RuntimeError("no sparsifier attached; call resonance_lib.sparsity.sparsify(model, ...) first")
        config = self.sparsifier.config
        self.sparsifier.update(config.start_step + (self.sparsifier.cycles + 1) * config.update_interval
                               if step is None else step)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample ``max_new_tokens`` tokens autoregressively (context cropped to block_size)."""
        if temperature <= 0:
            raise ValueError(f"temperature={temperature} must be > 0")
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.config.block_size:])
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("inf")
            probs = F.softmax(logits, dim=-1)
            idx = torch.cat([idx, torch.multinomial(probs, 1, generator=generator)], dim=1)
        return idx


def count_params(model: nn.Module) -> int:
    """Number of distinct trainable parameters (a tied weight is counted once); entries a fixed structural
    mask holds at zero (``PrimeMaskedLinear``) are not parameters the model can use, and are not counted."""
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total - sum(m.n_masked for m in model.modules() if isinstance(m, PrimeMaskedLinear))


def config_params(config: ResonanceConfig) -> int:
    """Parameter count of ``ResonanceLM(config)``, built on the meta device (no memory, no init cost).
    The phase initialisation does not change the count, so it is built with random phases."""
    if config.phase_init != "random":
        config = dataclasses.replace(config, phase_init="random")
    with torch.device("meta"):
        return count_params(ResonanceLM(config))


def match_params(config: ResonanceConfig, target_params: int, tolerance: float = 0.02) -> ResonanceConfig:
    """Resize ``config`` so its parameter count is within ``tolerance`` (relative) of ``target_params``.

    The parameter count is affine in the MLP hidden width h: P(h) = P₀ + h·slope. Widths are tried
    nearest-first (the given width, then multiples of n_head around it); for each, h is solved from
    P(h) = target, and the first width where h lands in [width, 8·width] within tolerance wins. Everything else
    (switches, depth, heads) is kept.
    """
    if target_params < 1:
        raise ValueError(f"target_params={target_params} must be positive")
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance={tolerance} must be in (0, 1)")
    step = config.n_head
    widths = sorted({max(step, config.n_embd + d * step) for d in range(-256, 257)},
                    key=lambda w: (abs(w - config.n_embd), w))
    for width in widths:
        base = dataclasses.replace(config, n_embd=width, ffn_hidden=1)
        p1 = config_params(base)
        slope = config_params(dataclasses.replace(base, ffn_hidden=2)) - p1
        hidden = round(1 + (target_params - p1) / slope)
        if not width <= hidden <= 8 * width:
            continue
        candidate = dataclasses.replace(base, ffn_hidden=hidden)
        if abs(config_params(candidate) - target_params) <= tolerance * target_params:
            return candidate
    raise ValueError(
        f"no width near n_embd={config.n_embd} gets within {tolerance:.1%} of target_params={target_params}"
    )


class PatchClassifier(nn.Module):
    """A small vision transformer built from the same blocks: linear patch embedding + learned positions,
    ``n_layer`` blocks (causal attention, as in the language model), final LayerNorm, mean over patches,
    linear head to ``config.vocab_size`` classes. ``block_size`` is the number of patches."""

    sparsifier = None

    def __init__(self, config: ResonanceConfig, patch_dim: int):
        super().__init__()
        self.config = config
        self.embed = nn.Linear(patch_dim, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.readout = make_reader(config)
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.head = nn.Linear(config.n_embd, config.vocab_size)
        self.apply(ResonanceLM._init_weights)

    def forward(self, patches: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.embed(patches) + self.wpe(torch.arange(patches.shape[1], device=patches.device))
        if self.config.delta_value_dim > 1:
            x = x.unsqueeze(-1).repeat(1, 1, 1, self.config.delta_value_dim)
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(self.readout(x)).mean(dim=1))
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss
