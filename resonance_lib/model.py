"""A nanoGPT-style decoder assembled from the parts its config names.

With every slot at its default, ``ResonanceLM`` is the baseline: token + learned position embedding,
``n_layer`` pre-norm blocks ``x ← x + Attn(LN(x))``, ``x ← x + MLP(LN(x))``, a final LayerNorm and a
language-model head tied to the token embedding, initialised as nanoGPT does (N(0, 0.02), residual
projections N(0, 0.02/√(2·n_layer))); after Karpathy's nanoGPT ``model.py``. Each slot's part comes from the
registry in ``components.py`` by the name in the config:

  embedding  "learned" | "phase" |      token vectors (+ the phases phase attention reads);       phase.py
             "phase_source"             "phase_source" is the phase source's own form, for comparison
  encoder    "learned" | "prime"        positions: x + wpe(n), or the prime Hilbert encoder      prime.py
  attention  "standard" | "phase" | "halting"                                                  attention.py,
                                                                                                phase.py, halting.py
  ffn_mask   "none" | "prime"           the MLP, dense or with the fixed prime resonance mask    prime.py
  residual   "add" | "delta" | "write"  x + f(x), the Householder delta rule X + β k (vᵀ − kᵀX), or its
                                        write-only control X + β k vᵀ                                  delta.py
  memory     False | True               a resonance memory read after the blocks                 memory.py
  head       "linear" | "premanifest"   logits = h Eᵀ, or refined against the vocabulary first   premanifest.py

The model applies nanoGPT's initialisation to every Linear and Embedding, then lets each component set what
its own mechanism needs (``component.reset_components``). Training adds the components' auxiliary terms,
each weighted by ``ResonanceConfig.<name>_weight``, to the cross-entropy that ``forward`` returns.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checks import check_bool, check_choice, check_float, check_int
from .component import collect_auxiliary_losses, reset_components
from .components import (
    ATTENTIONS,
    ENCODERS,
    FFN_MASKS,
    HEADS,
    MEMORIES,
    RESIDUALS,
    STATE_READERS,
    TOKEN_EMBEDDINGS,
    AddResidual,
)
from .delta import VectorState
from .phase import PHASE_EMBEDDINGS, PHASE_INITS
from .prime import PRIMES, check_primes

NANOGPT_STD = 0.02  # nanoGPT's (GPT-2's) initialisation std


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
    embedding: str = "learned"  # "learned" | "phase" (token vectors and phases)
    residual: str = "add"  # "add": x + f(x); "delta": X + β k (vᵀ − kᵀX); "write": X + β k vᵀ (the control)
    delta_value_dim: int = 1  # d_v of the delta state X ∈ R^{d×d_v}
    delta_beta_init: float = 1.0  # β at initialisation, in (0, 2)
    delta_v_sigmoid: bool = True  # v = 4·sigmoid(W_v h) (True) or W_v h (False)
    delta_fused: bool = True  # d_v > 1: the fused update and read (one autograd node each) or, False, the plain forms
    # d_v > 1: the plain update and read compiled by torch.compile in place of the fused nodes (a C++ compiler on CPU)
    delta_compiled: bool = False
    attention: str = "standard"  # "standard" | "phase" | "halting"
    phase_frequencies: int = 32  # F, the length of each token's phase vector
    phase_init: str = "random"  # "random": N(0, 0.3); "phonetic": shared phases per rhyme group (embedding="phase")
    halting_max_iters: int = 4
    halting_epsilon: float = 0.5  # halt where normalised attention entropy < ε
    halting_fused: bool = True  # each pass's attention and entropy as one autograd node, or False, the plain form
    ponder_weight: float = 0.01  # loss += ponder_weight · Σ_layers mean(N + R)
    encoder: str = "learned"  # "learned" | "prime"
    primes: tuple[int, ...] = PRIMES
    memory: bool = False
    memory_slots: int = 64
    head: str = "linear"  # "linear" | "premanifest"
    premanifest_max_iters: int = 3
    premanifest_epsilon: float = 0.5
    ffn_mask: str = "none"  # "none" | "prime"
    # std of the learned position table at initialisation: nanoGPT's 0.02, or 1.0 = PyTorch's nn.Embedding default,
    # which the phase source's standard baseline kept (test5.ipynb; its tied token table is re-drawn at 0.02 by
    # the head's Linear init, as here) — notebook 03
    position_init_std: float = NANOGPT_STD

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "delta_value_dim",
                     "phase_frequencies", "halting_max_iters", "memory_slots", "premanifest_max_iters"):
            check_int(name, getattr(self, name))
        for name, allowed in (("embedding", TOKEN_EMBEDDINGS), ("residual", RESIDUALS), ("attention", ATTENTIONS),
                              ("phase_init", PHASE_INITS), ("encoder", ENCODERS), ("head", HEADS),
                              ("ffn_mask", FFN_MASKS)):
            check_choice(name, getattr(self, name), list(allowed))
        for name in ("bias", "memory", "delta_v_sigmoid", "delta_fused", "delta_compiled", "halting_fused"):
            check_bool(name, getattr(self, name))
        if self.delta_compiled and not (self.has_matrix_state and self.delta_fused):
            raise ValueError(f"delta_compiled=True compiles the d×d_v state's fast forms: it needs residual='delta' or "
                             f"'write', delta_value_dim > 1 and delta_fused=True (got residual={self.residual!r}, "
                             f"delta_value_dim={self.delta_value_dim}, delta_fused={self.delta_fused})")
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
        if self.embedding not in PHASE_EMBEDDINGS and self.phase_init != "random":
            raise ValueError(f"phase_init={self.phase_init!r} needs embedding='phase' or 'phase_source' "
                             f"(got {self.embedding!r})")
        if self.attention == "phase" and self.embedding not in PHASE_EMBEDDINGS:
            raise ValueError(f"attention='phase' reads the token phases: it needs embedding='phase' or "
                             f"'phase_source' (got embedding={self.embedding!r})")
        self.primes = check_primes(self.primes, smallest=3 if self.encoder == "prime" else 2)
        check_float("halting_epsilon", self.halting_epsilon, 0.0, 2.0, low_open=True)  # ε > 1 halts flat rows too
        check_float("premanifest_epsilon", self.premanifest_epsilon, 0.0, 1.0, low_open=True)  # entropy in [0, 1]
        check_float("ponder_weight", self.ponder_weight, 0.0)
        check_float("position_init_std", self.position_init_std, 0.0, low_open=True)
        if self.position_init_std != NANOGPT_STD and self.encoder != "learned":
            raise ValueError(f"position_init_std={self.position_init_std!r} sets a learned position table: it needs "
                             f"encoder='learned' (got encoder={self.encoder!r})")

    @property
    def mlp_hidden(self) -> int:
        return self.ffn_hidden if self.ffn_hidden is not None else 4 * self.n_embd

    @property
    def has_matrix_state(self) -> bool:
        """Whether the residual state is a d×d_v matrix (delta or write-only rule, d_v > 1): the arms that
        ``delta_fused`` and ``delta_compiled`` apply to."""
        return self.residual in ("delta", "write") and self.delta_value_dim > 1


class Block(nn.Module):
    """Pre-norm block built from the parts it is given (as labml's layers receive ``self_attn`` and
    ``feed_forward``). For each sublayer f ∈ (attn, mlp): h = read(x), x ← residual(x, f(LN(h)), h, LN(h)).

    With ``AddResidual`` and the plain ``VectorState`` reader this is nanoGPT's block:
    x ← x + Attn(LN₁(x)); x ← x + MLP(LN₂(x)). ``residual`` makes one residual rule per sublayer.
    """

    def __init__(self, n_embd: int, attn: nn.Module, mlp: nn.Module,
                 residual: Callable[[], nn.Module] = AddResidual, read: nn.Module | None = None, bias: bool = False):
        super().__init__()
        self.read = read if read is not None else VectorState()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = attn
        self.res_1 = residual()
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = mlp
        self.res_2 = residual()

    def forward(self, x: torch.Tensor, **features) -> torch.Tensor:
        h = self.read(x)
        context = self.ln_1(h)
        x = self.res_1(x, self.attn(context, **features), h, context)
        h = self.read(x)
        context = self.ln_2(h)
        return self.res_2(x, self.mlp(context), h, context)


def build_block(config: ResonanceConfig) -> Block:
    """A block with the attention, MLP, residual rule and state reader that ``config`` names."""
    return Block(config.n_embd, ATTENTIONS[config.attention](config), FFN_MASKS[config.ffn_mask](config),
                 residual=lambda: RESIDUALS[config.residual](config), read=STATE_READERS[config.residual](config),
                 bias=config.bias)


def init_gpt_weights(model: nn.Module, n_layer: int) -> None:
    """nanoGPT's initialisation: every Linear and Embedding N(0, 0.02) (biases 0), residual projections
    (``c_proj``) N(0, 0.02/√(2·n_layer)) (GPT-2); then each component's own ``reset_parameters``."""
    model.apply(_init_weights)
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))
    reset_components(model)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)


class ResonanceLM(nn.Module):
    """Decoder-only language model; ``forward(idx, targets)`` returns ``(logits, cross-entropy)``.

    ``vocab`` (the tokenizer's ``itos``) is needed only for ``phase_init="phonetic"``.
    """

    sparsifier = None  # set by resonance_lib.sparsity.sparsify(model, ...)

    def __init__(self, config: ResonanceConfig, vocab: list[str] | None = None):
        super().__init__()
        self.config = config
        self.wte = TOKEN_EMBEDDINGS[config.embedding](config, vocab)
        self.wpe = ENCODERS[config.encoder](config)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(build_block(config) for _ in range(config.n_layer))
        self.readout = STATE_READERS[config.residual](config)
        self.memory = MEMORIES[config.memory](config)
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.head = HEADS[config.head](config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.token_weight  # weight tying (Press & Wolf 2017)
        init_gpt_weights(self, config.n_layer)
        if config.position_init_std != NANOGPT_STD:  # drawn again at the configured std
            with torch.no_grad():
                self.wpe.weight.normal_(0.0, config.position_init_std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size={self.config.block_size}")
        tokens, features = self.wte(idx)
        x = self.readout.expand(self.drop(self.wpe(tokens)))  # a d×d_v state starts as d_v copies
        for block in self.blocks:
            x = block(x, **features)
        x = self.readout(x)
        if self.memory is not None:
            x = x + self.memory(x)
        logits = self.head(self.ln_f(x), self.lm_head.weight)
        loss = None
        if targets is not None:  # cross-entropy over scored positions; targets of -100 are ignored
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def auxiliary_losses(self) -> dict[str, torch.Tensor]:
        """The components' auxiliary terms of the last forward pass, each weighted by ``config.<name>_weight``
        (``ponder`` with halting attention); training adds them to the cross-entropy ``forward`` returns."""
        weighted = {}
        for name, value in collect_auxiliary_losses(self).items():
            weight = getattr(self.config, f"{name}_weight")
            if weight > 0:
                weighted[name] = weight * value
        return weighted

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
    mask holds at zero (a module's ``n_masked``, e.g. ``PrimeMaskedLinear``) are not parameters the model can
    use, and are not counted."""
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total - sum(getattr(m, "n_masked", 0) for m in model.modules())


ModelBuilder = Callable[[ResonanceConfig], nn.Module]


def config_params(config: ResonanceConfig, model: ModelBuilder | None = None) -> int:
    """Parameter count of ``model(config)`` (default ``ResonanceLM``; e.g. ``partial(PatchClassifier,
    patch_dim=16)``), built on the meta device (no memory, no init cost). The phase initialisation does not
    change the count, so it is built with random phases."""
    if config.phase_init != "random":
        config = dataclasses.replace(config, phase_init="random")
    with torch.device("meta"):
        return count_params((model or ResonanceLM)(config))


def match_params(config: ResonanceConfig, target_params: int, tolerance: float = 0.02,
                 model: ModelBuilder | None = None) -> ResonanceConfig:
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
        p1 = config_params(base, model)
        slope = config_params(dataclasses.replace(base, ffn_hidden=2), model) - p1
        hidden = round(1 + (target_params - p1) / slope)
        if not width <= hidden <= 8 * width:
            continue
        candidate = dataclasses.replace(base, ffn_hidden=hidden)
        if abs(config_params(candidate, model) - target_params) <= tolerance * target_params:
            return candidate
    raise ValueError(
        f"no width near n_embd={config.n_embd} gets within {tolerance:.1%} of target_params={target_params}"
    )


class PatchClassifier(nn.Module):
    """A small vision transformer built from the same blocks: linear patch embedding + learned positions,
    ``n_layer`` blocks (causal attention, as in the language model), final LayerNorm, mean over patches,
    linear head to ``config.vocab_size`` classes. ``block_size`` is the number of patches.

    The block slots (attention, ffn_mask, residual) work as in the language model; the slots that need token
    ids or a vocabulary (embedding, encoder, memory, head; phase attention) are refused. Size it against a
    baseline with ``match_params(..., model=partial(PatchClassifier, patch_dim=...))``.
    """

    sparsifier = None
    SUPPORTED = {"embedding": ("learned",), "encoder": ("learned",), "memory": (False,), "head": ("linear",),
                 "attention": ("standard", "halting")}

    def __init__(self, config: ResonanceConfig, patch_dim: int):
        super().__init__()
        for name, allowed in self.SUPPORTED.items():
            if getattr(config, name) not in allowed:
                raise ValueError(f"PatchClassifier: {name}={getattr(config, name)!r} is not supported (patches have "
                                 f"no token ids or vocabulary); allowed: {list(allowed)}")
        check_int("patch_dim", patch_dim)
        self.config = config
        self.embed = nn.Linear(patch_dim, config.n_embd)
        self.wpe = ENCODERS["learned"](config)
        self.blocks = nn.ModuleList(build_block(config) for _ in range(config.n_layer))
        self.readout = STATE_READERS[config.residual](config)
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.head = nn.Linear(config.n_embd, config.vocab_size)
        self.apply(_init_weights)  # N(0, 0.02) everywhere (no residual-projection scaling, as before)
        reset_components(self)

    def forward(self, patches: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.readout.expand(self.wpe(self.embed(patches)))
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(self.readout(x)).mean(dim=1))
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss

    def auxiliary_losses(self) -> dict[str, torch.Tensor]:
        return ResonanceLM.auxiliary_losses(self)
