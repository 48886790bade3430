"""The Householder delta operator and the delta residual.

**The operator.** For a unit vector k ∈ Rᵈ and a gate β ∈ [0, 2],

    A(k, β) = I − β k kᵀ

leaves the hyperplane k⊥ alone and scales the k-direction by 1 − β: identity at β = 0, the orthogonal
projection onto k⊥ ("erase k") at β = 1, the Householder reflection across k⊥ at β = 2. Hence
eig(A) = {1, …, 1, 1 − β}, det A = 1 − β, A² = I at β = 2, and for β ≠ 1, A⁻¹ = I + β/(1 − β) k kᵀ.

**The delta rule.** With a value v ∈ R^{d_v} and a state X ∈ R^{d×d_v},

    X ← A X + β k vᵀ = X + β k (vᵀ − kᵀX)

erases what X stores along k and writes v there instead: after the update kᵀX = (1 − β) kᵀX + β vᵀ.

**As a residual connection** (Deep Delta Learning, Zhang, Liu, Wang & Gu, arXiv 2601.00417, 2026;
reference code github.com/yifanzhang-pro/deep-delta-learning, ``model/DDL.py`` and ``model/DDL-vdim1.py``;
the rule itself is the OUROBOROS README's X_{l+1} = X_l + β k (vᵀ − kᵀX_l)): the residual stream is the
state. Each sublayer's output gives the direction k (normalised), β = 2·sigmoid(w_βᵀ h + b_β) comes from
the normalised sublayer input h, and v from a projection of the (read) state, optionally squashed as
sigmoid(·)·4. With d_v > 1 the state is a d×d_v matrix; a causal depthwise short convolution over time
and a learned read vector compress it back to Rᵈ before each sublayer and before the head.

Reference forms (``delta_operator``, ``apply_delta``, ``delta_write``, ``StateReader.forward_reference``)
check their inputs and serve tests and notebooks; ``DeltaResidual`` and ``StateReader.forward`` are the fast
forms used in training (for d_v > 1 one autograd node each, ``MatrixDeltaWrite`` and ``ShortConvRead``, with
the backward written out; ``MatrixWriteOnly`` for the write-only control), tested against them, gradients included. With ``compiled=True``
(``ResonanceConfig.delta_compiled``) the plain forms ``plain_delta_write`` and ``plain_short_conv_read`` run
through ``torch.compile`` instead: each becomes one generated loop (the read's d_v·K passes over the state become
one), at the price of a compile per process and a C++ compiler on a CPU; also tested against the fused forms.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import _get_current_dispatch_mode

from .checks import check_bool, check_float, check_int
from .component import Component

UNIT_TOLERANCE = 1e-4


def check_compiled(compiled, value_dim: int, fused: bool) -> None:
    """``compiled`` is a bool, and True only where there is a d×d_v state (d_v > 1) and the fast form is asked for
    (it replaces the fused nodes; with ``fused=False`` the plain forms run as they are)."""
    check_bool("compiled", compiled)
    if compiled and value_dim == 1:
        raise ValueError(f"compiled=True compiles the d×d_v state's update and read: it needs value_dim > 1 "
                         f"(got value_dim={value_dim})")
    if compiled and not fused:
        raise ValueError("compiled=True replaces the fused forms with compiled ones; fused=False asks for the plain "
                         "forms: set one of them")


def _check_unit(k: torch.Tensor) -> None:
    norms = k.detach().norm(dim=-1)
    if not torch.allclose(norms, torch.ones_like(norms), atol=UNIT_TOLERANCE):
        raise ValueError(f"k must have unit norm (|‖k‖ − 1| ≤ {UNIT_TOLERANCE}); got norms in "
                         f"[{norms.min().item():.6g}, {norms.max().item():.6g}]")


def _check_beta(beta) -> torch.Tensor:
    beta = torch.as_tensor(beta)
    if beta.numel() and (beta.min() < 0 or beta.max() > 2 or not torch.isfinite(beta).all()):
        raise ValueError(f"beta must lie in [0, 2]; got values in [{beta.min().item():.6g}, {beta.max().item():.6g}]")
    return beta


def delta_operator(k: torch.Tensor, beta: float | torch.Tensor) -> torch.Tensor:
    """The d×d matrix A = I − β k kᵀ for a unit vector k of shape (d,). For teaching and tests."""
    if k.dim() != 1:
        raise ValueError(f"k must be one vector of shape (d,), got shape {tuple(k.shape)}")
    _check_unit(k)
    beta = _check_beta(beta).to(k)
    return torch.eye(k.numel(), dtype=k.dtype, device=k.device) - beta * torch.outer(k, k)


def _as_state(x: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Treat a vector x (…, d) as a d×1 state; a matrix state (…, d, d_v) passes through."""
    return (x.unsqueeze(-1), True) if x.dim() == k.dim() else (x, False)


def apply_delta(x: torch.Tensor, k: torch.Tensor, beta) -> torch.Tensor:
    """A x = x − β k (kᵀx) in O(d·d_v), never forming A. x: (…, d) or (…, d, d_v); k: (…, d); β: (…) or scalar."""
    _check_unit(k)
    beta = _check_beta(beta).to(k)
    X, was_vector = _as_state(x, k)
    proj = torch.einsum("...d,...dv->...v", k, X)  # kᵀX, shape (…, d_v)
    out = X - beta[..., None, None] * k[..., :, None] * proj[..., None, :]
    return out.squeeze(-1) if was_vector else out


def delta_write(x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta) -> torch.Tensor:
    """The delta rule X + β k (vᵀ − kᵀX). x: (…, d) or (…, d, d_v); k: (…, d); v: (…, d_v) (or (…) if x is a vector)."""
    _check_unit(k)
    beta = _check_beta(beta).to(k)
    X, was_vector = _as_state(x, k)
    v = v.unsqueeze(-1) if was_vector and v.dim() == k.dim() - 1 else v
    proj = torch.einsum("...d,...dv->...v", k, X)
    out = X + beta[..., None, None] * k[..., :, None] * (v - proj)[..., None, :]
    return out.squeeze(-1) if was_vector else out


def _channel_major(state: torch.Tensor) -> torch.Tensor:
    """A (B, T, d, d_v) state as S = its (B, d_v, T, d) permutation in contiguous memory: each value channel's
    (T, d) plane contiguous per sequence (a view when the state was laid out channel-major, as
    ``StateReader.expand`` makes it; a copy otherwise). Reductions over d then run along contiguous memory, and the
    read's lag shifts X_{t−s} are contiguous slices of a plane, which is what makes the fused forms below fast on a
    CPU (~17% faster per update and read than a value-major (B, T, d_v, d) layout, whose shifted slices are
    128-float pieces)."""
    S = state.permute(0, 3, 1, 2)
    return S if S.is_contiguous() else S.contiguous()


def plain_delta_write(state, k, v, beta):
    """X + k (β(v − kᵀX))ᵀ on a (B, T, d, d_v) state as plain tensor expressions (autograd takes the backward):
    the form ``MatrixDeltaWrite`` is tested against, and the source of its compiled form."""
    proj = torch.einsum("btd,btdv->btv", k, state)  # kᵀX
    write = beta.unsqueeze(-1) * (v - proj)  # β(vᵀ − kᵀX), shape (B, T, d_v)
    return state + k.unsqueeze(-1) * write.unsqueeze(-2)


def plain_write_only(state, k, v, beta):
    """X + β k vᵀ on a (B, T, d, d_v) state (the write-only control's rule), as plain tensor expressions."""
    return state + k.unsqueeze(-1) * (beta.unsqueeze(-1) * v).unsqueeze(-2)


def plain_short_conv_read(state, taps):
    """h_t = Σ_s Σ_c W_{s,c} ⊙ X_{t−s, ·, c} as plain tensor expressions: K shifted copies of the state, ``taps``
    W of shape (K, d_v, d) as ``StateReader.taps`` makes them; the source of ``ShortConvRead``'s compiled form."""
    T, K = state.shape[1], taps.shape[0]
    padded = F.pad(state.transpose(-1, -2), (0, 0, 0, 0, K - 1, 0))  # (B, T + K − 1, d_v, d), zeros before t = 0
    return sum((padded[:, K - 1 - s:K - 1 - s + T] * taps[s]).sum(-2) for s in range(K))


_COMPILED: dict = {}


def compiled(fn):
    """``fn`` through ``torch.compile`` (inductor: one generated loop instead of one pass per tensor operation;
    it needs a C++ compiler on a CPU, Triton on CUDA), built on first use and kept for the process. The first
    call of each shape compiles (seconds to a minute); inductor's on-disk cache serves later processes.

    Under a tensor dispatch mode (``FlopCounterMode`` counting FLOPs, say), which ``torch.compile`` cannot trace
    through, ``fn`` itself runs: the same plain expressions, so the mode sees the operations the kernel fuses."""
    if fn not in _COMPILED:
        kernel = torch.compile(fn, fullgraph=True)

        def run(*args):
            return fn(*args) if _get_current_dispatch_mode() is not None else kernel(*args)

        _COMPILED[fn] = run
    return _COMPILED[fn]


class MatrixDeltaWrite(torch.autograd.Function):
    """The delta rule on a d×d_v state, X' = X + k wᵀ with w = β(v − Xᵀk), as one autograd node.

    Autograd on the plain expression keeps ~10 state-sized temporaries; the backward written out needs four
    passes over the state. With G = ∂L/∂X' and u = Gᵀk (per token):

        ∂X = G − k (βu)ᵀ,   ∂k = G w − X (βu),   ∂v = βu,   ∂β = (v − Xᵀk)ᵀ u.

    Shapes: state (B, T, d, d_v); k (B, T, d), unit; v (B, T, d_v); β (B, T). Tested against ``delta_write``
    (values and gradients). Computed on the channel-major S of ``_channel_major`` (per-token quantities as
    (B, d_v, T)); output and gradients keep that layout.
    """

    @staticmethod
    def forward(ctx, state, k, v, beta):
        with torch.autocast(state.device.type, enabled=False):
            S, k_row = _channel_major(state), k.unsqueeze(1)  # (B, d_v, T, d), (B, 1, T, d)
            diff = v.transpose(1, 2) - torch.linalg.vecdot(S, k_row)  # v − Xᵀk, (B, d_v, T)
            w = beta.unsqueeze(1) * diff
            out = torch.addcmul(S, w.unsqueeze(-1), k_row)  # X + k wᵀ
        ctx.save_for_backward(S, k, beta, diff, w)
        return out.permute(0, 2, 3, 1)

    @staticmethod
    def backward(ctx, grad):
        S, k, beta, diff, w = ctx.saved_tensors
        with torch.autocast(grad.device.type, enabled=False):
            G, k_row = _channel_major(grad), k.unsqueeze(1)
            u = torch.linalg.vecdot(G, k_row)  # Gᵀk, (B, d_v, T)
            bu = beta.unsqueeze(1) * u
            grad_state = torch.addcmul(G, bu.unsqueeze(-1), k_row, value=-1.0).permute(0, 2, 3, 1)
            grad_k = torch.mul(G[:, 0], w[:, 0, :, None]).addcmul_(S[:, 0], bu[:, 0, :, None], value=-1.0)
            for c in range(1, S.shape[1]):  # G w − X (βu), one value channel at a time
                grad_k.addcmul_(G[:, c], w[:, c, :, None]).addcmul_(S[:, c], bu[:, c, :, None], value=-1.0)
            grad_beta = (diff * u).sum(1)
        return grad_state, grad_k, bu.transpose(1, 2), grad_beta


class MatrixWriteOnly(torch.autograd.Function):
    """The write-only control's rule on a d×d_v state, X' = X + k wᵀ with w = βv, as one autograd node.

    ``MatrixDeltaWrite`` without the erase term, on the same channel-major layout (the plain expression adds a
    value-major product to a channel-major state, a mixed layout that does not vectorise). With G = ∂L/∂X' and
    u = Gᵀk (per token):

        ∂X = G,   ∂k = G w,   ∂v = βu,   ∂β = vᵀu.

    Shapes as ``MatrixDeltaWrite``; tested against ``plain_write_only`` (values and gradients).
    """

    @staticmethod
    def forward(ctx, state, k, v, beta):
        with torch.autocast(state.device.type, enabled=False):
            S, k_row, v_t = _channel_major(state), k.unsqueeze(1), v.transpose(1, 2)  # v as (B, d_v, T)
            w = beta.unsqueeze(1) * v_t
            out = torch.addcmul(S, w.unsqueeze(-1), k_row)  # X + k wᵀ
        ctx.save_for_backward(k, v_t, beta, w)
        return out.permute(0, 2, 3, 1)

    @staticmethod
    def backward(ctx, grad):
        k, v_t, beta, w = ctx.saved_tensors
        with torch.autocast(grad.device.type, enabled=False):
            G, k_row = _channel_major(grad), k.unsqueeze(1)
            u = torch.linalg.vecdot(G, k_row)  # Gᵀk, (B, d_v, T)
            grad_k = torch.mul(G[:, 0], w[:, 0, :, None])
            for c in range(1, G.shape[1]):  # G w, one value channel at a time
                grad_k.addcmul_(G[:, c], w[:, c, :, None])
            grad_beta = (v_t * u).sum(1)
        return grad, grad_k, (beta.unsqueeze(1) * u).transpose(1, 2), grad_beta


class ShortConvRead(torch.autograd.Function):
    """h_t = Σ_s Σ_c W_{s,c} ⊙ X_{t−s, ·, c} (s = 0 … K−1, zero before t = 0) as one autograd node.

    ``taps`` W has shape (K, d_v, d): W_s = conv weight at lag s times the read vector. The forward
    accumulates the d_v·K products in place into h; the backward, with g = ∂L/∂h, is
    ∂X_{t,·,c} = Σ_s W_{s,c} ⊙ g_{t+s}  and  ∂W_{s,c} = Σ_{b,t} X_{t−s,·,c} ⊙ g_t.
    Tested against ``StateReader.forward_reference`` (values and gradients).
    """

    @staticmethod
    def forward(ctx, state, taps):
        with torch.autocast(state.device.type, enabled=False):
            S = _channel_major(state)  # (B, d_v, T, d)
            T, lags = S.shape[2], min(taps.shape[0], S.shape[2])
            out = torch.mul(S[:, 0], taps[0, 0])  # (B, T, d): channel 0 at lag 0, then the rest added in place
            for c in range(S.shape[1]):  # accumulate each channel and lag straight into h: no state-sized buffer
                for s in range(lags):
                    if c or s:
                        out[:, s:].addcmul_(S[:, c, :T - s], taps[s, c])
        ctx.save_for_backward(S, taps)
        return out

    @staticmethod
    def backward(ctx, grad):
        S, taps = ctx.saved_tensors
        B, channels, T, d = S.shape
        lags = min(taps.shape[0], T)
        with torch.autocast(grad.device.type, enabled=False):
            grad_state = torch.empty_like(S)
            grad_taps = torch.zeros_like(taps) if ctx.needs_input_grad[1] else None
            product = grad.new_empty(B * T * d)  # X_{t−s} ⊙ g_t of one (channel, lag), reused
            for c in range(channels):  # one value channel at a time: its (B, T, d) plane stays in cache
                torch.mul(grad, taps[0, c], out=grad_state[:, c])
                for s in range(1, lags):
                    grad_state[:, c, :T - s].addcmul_(grad[:, s:], taps[s, c])
                if grad_taps is not None:
                    for s in range(lags):
                        terms = product[:B * (T - s) * d].view(B, T - s, d)
                        torch.mul(S[:, c, :T - s], grad[:, s:], out=terms)
                        torch.sum(terms.view(-1, d), 0, out=grad_taps[s, c])
        return grad_state.permute(0, 2, 3, 1), grad_taps


class DeltaResidual(Component):
    """X ← X + β k (vᵀ − kᵀX) as the residual connection around one sublayer (the fast form).

    ``forward(state, update, v_in, context)``:
      state   X, (B, T, d) when ``value_dim == 1``, else (B, T, d, d_v);
      update  the sublayer's output; k = update / max(‖update‖, k_eps);
      v_in    what v is projected from (the state as read by the sublayer), (B, T, d);
      context the normalised sublayer input; β = 2·sigmoid(w_βᵀ context + b_β).
    β's bias starts at logit(beta_init / 2), so β = beta_init when w_βᵀ context = 0.
    ``fused`` (d_v > 1): the update as one autograd node (``MatrixDeltaWrite``), or the plain expression
    (``plain_delta_write``). ``compiled`` (d_v > 1): the plain expression through ``torch.compile`` instead.
    """

    def __init__(self, dim: int, value_dim: int = 1, beta_init: float = 1.0, k_eps: float = 1e-6,
                 v_sigmoid: bool = True, v_sigmoid_scale: float = 4.0, fused: bool = True, compiled: bool = False):
        super().__init__()
        check_int("value_dim", value_dim)
        check_bool("fused", fused)
        check_compiled(compiled, value_dim, fused)
        self.fused, self.compiled = fused, compiled
        check_float("beta_init", beta_init, 0.0, 2.0, low_open=True, high_open=True)  # 2·sigmoid never reaches 0, 2
        check_float("k_eps", k_eps, 0.0, low_open=True)
        check_bool("v_sigmoid", v_sigmoid)
        check_float("v_sigmoid_scale", v_sigmoid_scale, 0.0, low_open=True)
        self.value_dim, self.k_eps = value_dim, k_eps
        self.v_sigmoid, self.v_sigmoid_scale = v_sigmoid, v_sigmoid_scale
        self.beta_proj = nn.Linear(dim, 1)
        self.v_proj = nn.Linear(dim, value_dim)
        self.beta_init = beta_init
        self.reset_parameters()
        self.last_beta: torch.Tensor | None = None  # β of the latest forward, detached, for inspection

    def reset_parameters(self) -> None:
        """β's bias to logit(beta_init/2): β = beta_init wherever w_βᵀ context = 0."""
        with torch.no_grad():
            p = self.beta_init / 2.0
            self.beta_proj.bias.fill_(math.log(p) - math.log(1.0 - p))

    def gates(self, update, v_in, context):
        """k (unit), β ∈ (0, 2) and v for one step; shared by ``forward`` and the tests."""
        k = F.normalize(update, dim=-1, eps=self.k_eps)
        beta = 2.0 * torch.sigmoid(self.beta_proj(context).float()).squeeze(-1)  # fp32 for the gate
        v = self.v_proj(v_in)
        if self.v_sigmoid:
            v = torch.sigmoid(v) * self.v_sigmoid_scale
        return k, beta, v

    def forward(self, state, update, v_in, context):
        k, beta, v = self.gates(update, v_in, context)
        self.last_beta = beta.detach()
        if self.value_dim == 1:  # vector state: x + k·β(v − kᵀx)
            proj = (k * state).sum(-1, keepdim=True)
            return state + k * (beta.unsqueeze(-1).to(state.dtype) * (v - proj))
        k, v, beta = k.to(state.dtype), v.to(state.dtype), beta.to(state.dtype)
        if self.compiled:
            return compiled(plain_delta_write)(state, k, v, beta)
        if self.fused:  # the rule as one autograd node, its backward written out
            return MatrixDeltaWrite.apply(state, k, v, beta)
        return plain_delta_write(state, k, v, beta)


class WriteOnlyResidual(DeltaResidual):
    """The control for the delta residual: X ← X + β k vᵀ — the same k, β and v, but no erase term −β k (kᵀX).

    Deep Delta Learning attributes its gains to erasing (the −kᵀX part); this rule keeps everything else equal,
    so a delta-vs-write-only comparison isolates it. Same parameters and state shapes as ``DeltaResidual``;
    for d_v > 1, ``fused`` runs the update as one autograd node (``MatrixWriteOnly``), ``fused=False`` as the plain
    expression (``plain_write_only``), and ``compiled`` runs ``plain_write_only`` through ``torch.compile``.
    """

    def forward(self, state, update, v_in, context):
        k, beta, v = self.gates(update, v_in, context)
        self.last_beta = beta.detach()
        if self.value_dim == 1:  # vector state: x + k·βv
            return state + k * (beta.unsqueeze(-1).to(state.dtype) * v)
        k, v, beta = k.to(state.dtype), v.to(state.dtype), beta.to(state.dtype)
        if self.compiled:
            return compiled(plain_write_only)(state, k, v, beta)
        if self.fused:
            return MatrixWriteOnly.apply(state, k, v, beta)
        return plain_write_only(state, k, v, beta)


class StateReader(Component):
    """Compress an expanded state X ∈ R^{d×d_v} (per token) back to Rᵈ: h = Σ_c r_c · conv_t(X)[:, c].

    ``conv_t`` is a causal depthwise convolution over time (kernel ``kernel_size``) on the d·d_v channels;
    r ∈ R^{d_v} is a learned read vector (init 1/d_v), as in the reference's ResidualShortConvCompressor.
    Unlike the reference (which draws the conv weights from N(0, 0.5/√d)), the conv starts as the identity
    (weight 1 on the current position), so at initialisation h is exactly the mean over value channels.
    ``fused``: read through ``ShortConvRead`` (one autograd node) or through ``forward_reference``;
    ``compiled``: through ``plain_short_conv_read`` compiled by ``torch.compile`` instead.
    """

    def __init__(self, dim: int, value_dim: int, kernel_size: int = 4, fused: bool = True, compiled: bool = False):
        super().__init__()
        check_int("value_dim", value_dim, low=2)  # a vector state (d_v = 1) needs no reader
        check_int("kernel_size", kernel_size)
        check_bool("fused", fused)
        check_compiled(compiled, value_dim, fused)
        self.fused, self.compiled = fused, compiled
        self.dim, self.value_dim, self.kernel_size = dim, value_dim, kernel_size
        self.conv_weight = nn.Parameter(torch.empty(dim * value_dim, 1, kernel_size))
        self.read = nn.Parameter(torch.empty(value_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The conv as the identity (weight 1 on the current position), r = 1/d_v."""
        with torch.no_grad():
            self.conv_weight.zero_()
            self.conv_weight[:, 0, -1] = 1.0  # the last tap is the current position
            self.read.fill_(1.0 / self.value_dim)

    def expand(self, x: torch.Tensor) -> torch.Tensor:
        """The d×d_v state a stack starts from: d_v copies of the embedding, (B, T, d) → (B, T, d, d_v), laid
        out channel-major in memory ((B, d_v, T, d): each copy contiguous), the layout the fused forms read without
        copying."""
        return x.unsqueeze(1).repeat(1, self.value_dim, 1, 1).permute(0, 2, 3, 1)

    def taps(self) -> torch.Tensor:
        """W_s = w_{·,·,K−1−s} ⊙ r for lags s = 0 … K−1: the conv weight with the read vector folded in, (K, d_v, d)
        in contiguous memory, so that each W_{s,c} the fused read broadcasts over a (B, T, d) plane is a contiguous
        d-vector (a strided one does not vectorise: the read ran ~2.5× slower)."""
        taps = self.conv_weight.view(self.dim, self.value_dim, self.kernel_size) * self.read[:, None]
        return taps.flip(-1).permute(2, 1, 0).contiguous()

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """h_t = Σ_s Σ_c W_{s,c} ⊙ X_{t−s, ·, c}, the fused form (``ShortConvRead``) unless ``fused=False``."""
        if state.dim() != 4:
            raise ValueError(f"state must have shape (B, T, d, d_v), got {tuple(state.shape)}")
        if self.compiled:
            return compiled(plain_short_conv_read)(state, self.taps().to(state.dtype))
        if not self.fused:
            return self.forward_reference(state)
        return ShortConvRead.apply(state, self.taps().to(state.dtype))

    def forward_reference(self, state: torch.Tensor) -> torch.Tensor:
        """h_t = Σ_j Σ_c (w_{·,c,j} r_c) ⊙ X_{t−K+1+j, ·, c}: the K taps as shifted copies of the state, with
        the read vector folded into the taps (equal to a grouped conv1d then the read, tested)."""
        T, K = state.shape[1], self.kernel_size
        taps = self.conv_weight.view(self.dim, self.value_dim, K) * self.read[:, None]  # (d, d_v, K)
        padded = F.pad(state, (0, 0, 0, 0, K - 1, 0))  # K−1 zero steps before t = 0
        return sum((padded[:, j:j + T] * taps[..., j]).sum(-1) for j in range(K))


class VectorState(nn.Module):
    """The reader of a plain vector residual stream (d_v = 1): the state is read as it is."""

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return state

    def expand(self, x: torch.Tensor) -> torch.Tensor:
        return x


def state_reader(dim: int, value_dim: int = 1, fused: bool = True, compiled: bool = False) -> nn.Module:
    """What a sublayer reads from the residual state: ``VectorState`` for d_v = 1, else a ``StateReader``."""
    return StateReader(dim, value_dim, fused=fused, compiled=compiled) if value_dim > 1 else VectorState()


@torch.no_grad()
def collect_betas(model: nn.Module, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """β of every token at every delta residual for one forward pass: ``{module name: β values}``."""
    was_training = model.training
    model.eval()
    model(idx)
    model.train(was_training)
    return {name: m.last_beta.flatten().cpu() for name, m in model.named_modules() if isinstance(m, DeltaResidual)}
