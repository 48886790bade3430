import dataclasses

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from resonance_lib.delta import (
    DeltaResidual,
    StateReader,
    WriteOnlyResidual,
    apply_delta,
    delta_operator,
    delta_write,
)
from resonance_lib.model import ResonanceConfig, ResonanceLM

pytestmark = pytest.mark.usefixtures("double_precision")  # see conftest.py


dims = st.integers(min_value=2, max_value=12)
betas = st.floats(min_value=0.0, max_value=2.0)
seeds = st.integers(min_value=0, max_value=2**31 - 1)


def unit(d, seed, *batch):
    k = torch.randn(*batch, d, generator=torch.Generator().manual_seed(seed))
    return k / k.norm(dim=-1, keepdim=True)


@settings(max_examples=40, deadline=None)
@given(d=dims, beta=betas, seed=seeds)
def test_eigenvalues_are_ones_and_one_minus_beta(d, beta, seed):
    eig = torch.linalg.eigvalsh(delta_operator(unit(d, seed), beta))  # A is symmetric
    expected = torch.sort(torch.tensor([1.0] * (d - 1) + [1.0 - beta])).values
    assert torch.allclose(eig, expected, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(d=dims, beta=betas, seed=seeds)
def test_determinant_is_one_minus_beta(d, beta, seed):
    assert torch.linalg.det(delta_operator(unit(d, seed), beta)).item() == pytest.approx(1.0 - beta, abs=1e-10)


@settings(max_examples=20, deadline=None)
@given(d=dims, seed=seeds)
def test_reflection_is_an_involution_and_orthogonal(d, seed):
    A = delta_operator(unit(d, seed), 2.0)
    eye = torch.eye(d)
    assert torch.allclose(A @ A, eye, atol=1e-12)
    for beta in (0.0, 2.0):
        A = delta_operator(unit(d, seed), beta)
        assert torch.allclose(A.T @ A, eye, atol=1e-12)
    assert not torch.allclose(delta_operator(unit(d, seed), 1.0).T @ delta_operator(unit(d, seed), 1.0), eye)


@settings(max_examples=40, deadline=None)
@given(d=dims, beta=betas.filter(lambda b: abs(b - 1.0) > 1e-2), seed=seeds)
def test_inverse_formula(d, beta, seed):
    k = unit(d, seed)
    inverse = torch.eye(d) + beta / (1.0 - beta) * torch.outer(k, k)
    assert torch.allclose(inverse @ delta_operator(k, beta), torch.eye(d), atol=1e-8)


@settings(max_examples=20, deadline=None)
@given(d=dims, seed=seeds)
def test_projection_kills_k(d, seed):
    k = unit(d, seed)
    assert torch.allclose(delta_operator(k, 1.0) @ k, torch.zeros(d), atol=1e-12)
    x = torch.randn(d, generator=torch.Generator().manual_seed(seed + 1))
    assert abs(torch.dot(k, apply_delta(x, k, 1.0)).item()) < 1e-12


@settings(max_examples=40, deadline=None)
@given(d=dims, dv=st.integers(1, 4), seed=seeds)
def test_apply_delta_and_delta_write_match_the_matrix_form(d, dv, seed):
    gen = torch.Generator().manual_seed(seed)
    k = unit(d, seed, 3)
    beta = torch.rand(3, generator=gen) * 2
    X = torch.randn(3, d, dv, generator=gen)
    v = torch.randn(3, dv, generator=gen)
    A = torch.stack([delta_operator(k[i], beta[i]) for i in range(3)])
    assert torch.allclose(apply_delta(X, k, beta), A @ X, atol=1e-12)
    expected = A @ X + beta[:, None, None] * k[:, :, None] * v[:, None, :]
    assert torch.allclose(delta_write(X, k, v, beta), expected, atol=1e-12)
    x = X[..., 0]  # a vector state behaves as d_v = 1
    assert torch.allclose(apply_delta(x, k, beta), (A @ x[..., None])[..., 0], atol=1e-12)


def test_delta_write_stores_v_along_k_at_beta_one():
    k, x, v = unit(5, 0), torch.randn(5), torch.tensor(3.0)
    assert torch.dot(k, delta_write(x, k, v, 1.0)).item() == pytest.approx(3.0)


@pytest.mark.parametrize("beta", [1e-4, 1.0 - 1e-4, 1.0, 1.0 + 1e-4, 2.0 - 1e-4])
def test_gradients_finite_near_zero_one_and_two(beta):
    k = unit(6, 1).requires_grad_(True)
    b = torch.tensor(beta, requires_grad=True)
    x, v = torch.randn(6, 2), torch.randn(2)
    delta_write(x, k, v, b).square().sum().backward()
    assert torch.isfinite(k.grad).all() and torch.isfinite(b.grad)


def test_reference_functions_reject_bad_inputs():
    with pytest.raises(ValueError, match="unit norm"):
        delta_operator(torch.tensor([1.0, 1.0]), 1.0)
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 2\]"):
        delta_operator(unit(3, 0), 2.5)
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 2\]"):
        apply_delta(torch.randn(3), unit(3, 0), -0.1)
    with pytest.raises(ValueError, match="unit norm"):
        delta_write(torch.randn(3), 2 * unit(3, 0), torch.tensor(1.0), 1.0)


@pytest.mark.parametrize("value_dim", [1, 4])
def test_fast_residual_equals_reference_rule(value_dim):
    torch.manual_seed(0)
    layer = DeltaResidual(8, value_dim=value_dim, beta_init=0.7)
    shape = (2, 5, 8) if value_dim == 1 else (2, 5, 8, value_dim)
    state, update, v_in, context = torch.randn(*shape), torch.randn(2, 5, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    k, beta, v = layer.gates(update, v_in, context)
    expected = delta_write(state, k, v.squeeze(-1) if value_dim == 1 else v, beta)
    assert torch.allclose(layer(state, update, v_in, context), expected, atol=1e-12)


def test_beta_starts_at_beta_init_and_bad_settings_raise():
    layer = DeltaResidual(4, beta_init=0.3)
    layer.beta_proj.weight.data.zero_()
    _, beta, _ = layer.gates(torch.randn(1, 2, 4), torch.randn(1, 2, 4), torch.randn(1, 2, 4))
    assert torch.allclose(beta, torch.full_like(beta, 0.3))
    with pytest.raises(ValueError, match="beta_init=2.0"):
        DeltaResidual(4, beta_init=2.0)
    with pytest.raises(ValueError, match="value_dim=0"):
        DeltaResidual(4, value_dim=0)


def test_state_reader_equals_a_grouped_causal_conv_then_read():
    reader = StateReader(3, 4, kernel_size=3)
    reader.conv_weight.data.normal_()
    reader.read.data.normal_()
    X = torch.randn(2, 7, 3, 4)
    x = X.reshape(2, 7, 12).transpose(1, 2)
    conv = torch.nn.functional.conv1d(torch.nn.functional.pad(x, (2, 0)), reader.conv_weight, groups=12)
    expected = (conv.transpose(1, 2).reshape(2, 7, 3, 4) * reader.read).sum(-1)
    assert torch.allclose(reader(X), expected, atol=1e-12)


def test_state_reader_starts_as_the_channel_mean_and_is_causal():
    reader = StateReader(3, 4)
    X = torch.randn(2, 6, 3, 4)
    assert torch.allclose(reader(X), X.mean(-1))
    reader.conv_weight.data.normal_()
    Y = X.clone()
    Y[:, 4:] += 1.0
    assert torch.allclose(reader(X)[:, :4], reader(Y)[:, :4]) and not torch.allclose(reader(X)[:, 4:], reader(Y)[:, 4:])


BASE = ResonanceConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=8)


def test_delta_switch_changes_the_model_and_keeps_causality():
    idx = torch.randint(16, (2, 8))
    torch.manual_seed(0)
    add_logits, _ = ResonanceLM(BASE)(idx)
    for value_dim in (1, 3):
        torch.manual_seed(0)
        model = ResonanceLM(dataclasses.replace(BASE, residual="delta", delta_value_dim=value_dim)).eval()
        logits, _ = model(idx)
        assert logits.shape == add_logits.shape and not torch.allclose(logits, add_logits)
        assert isinstance(model.blocks[0].res_1, DeltaResidual)
        changed = idx.clone()
        changed[:, 5:] = (changed[:, 5:] + 1) % 16
        assert torch.allclose(model(changed)[0][:, :5], logits[:, :5], atol=1e-10)


def test_delta_beta_init_reaches_the_model():
    model = ResonanceLM(dataclasses.replace(BASE, residual="delta", delta_beta_init=1.5))
    bias = model.blocks[1].res_2.beta_proj.bias
    assert 2 * torch.sigmoid(bias).item() == pytest.approx(1.5)


def test_delta_v_sigmoid_switch_changes_v():
    torch.manual_seed(0)
    on = ResonanceLM(dataclasses.replace(BASE, residual="delta", delta_v_sigmoid=True))
    torch.manual_seed(0)
    off = ResonanceLM(dataclasses.replace(BASE, residual="delta", delta_v_sigmoid=False))
    idx = torch.randint(16, (1, 8))
    assert not torch.allclose(on(idx)[0], off(idx)[0])


@pytest.mark.parametrize(
    "changes, pattern",
    [({"residual": "householder"}, r"residual='householder'; allowed: \['add', 'delta', 'write'\]"),
     ({"delta_value_dim": 4}, r"delta_value_dim=4 needs residual='delta'"),
     ({"residual": "delta", "delta_value_dim": 0}, r"delta_value_dim=0"),
     ({"residual": "delta", "delta_beta_init": 0.0}, r"delta_beta_init=0.0 must lie in \(0, 2\)")],
)
def test_bad_delta_config(changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        dataclasses.replace(BASE, **changes)


def test_collect_betas_reports_every_delta_residual():
    from resonance_lib.delta import collect_betas

    model = ResonanceLM(dataclasses.replace(BASE, residual="delta"))
    betas = collect_betas(model, torch.randint(16, (3, 8)))
    assert sorted(betas) == ["blocks.0.res_1", "blocks.0.res_2", "blocks.1.res_1", "blocks.1.res_2"]
    assert all(b.shape == (24,) and ((b > 0) & (b < 2)).all() for b in betas.values())


@pytest.mark.parametrize("value_dim", [1, 3])
def test_the_write_only_control_is_the_delta_rule_without_its_erase_term(value_dim):
    from resonance_lib.delta import WriteOnlyResidual

    torch.manual_seed(0)
    delta = DeltaResidual(6, value_dim)
    control = WriteOnlyResidual(6, value_dim)
    control.load_state_dict(delta.state_dict())  # same parameters: only the rule differs
    B, T = 2, 4
    state = torch.randn(B, T, 6) if value_dim == 1 else torch.randn(B, T, 6, value_dim)
    update, v_in, context = torch.randn(B, T, 6), torch.randn(B, T, 6), torch.randn(B, T, 6)
    k, beta, v = delta.gates(update, v_in, context)
    X = state if value_dim > 1 else state.unsqueeze(-1)
    erase = (beta[..., None, None] * k[..., :, None] * torch.einsum("btd,btdv->btv", k, X)[..., None, :])
    erase = erase if value_dim > 1 else erase.squeeze(-1)
    # X_delta = X + βk(vᵀ − kᵀX) = X_write − βk(kᵀX): the two differ by exactly the erase term
    assert torch.allclose(control(state, update, v_in, context) - erase, delta(state, update, v_in, context),
                          atol=1e-10)
    assert not torch.allclose(control(state, update, v_in, context), delta(state, update, v_in, context))


def test_the_write_switch_builds_the_control_and_matches_the_delta_arms_size():
    from resonance_lib.delta import WriteOnlyResidual
    from resonance_lib.model import config_params

    model = ResonanceLM(dataclasses.replace(BASE, residual="write", delta_value_dim=3))
    assert isinstance(model.blocks[0].res_1, WriteOnlyResidual)
    assert config_params(dataclasses.replace(BASE, residual="write", delta_value_dim=3)) == config_params(
        dataclasses.replace(BASE, residual="delta", delta_value_dim=3))
    assert torch.isfinite(model(torch.randint(16, (2, 8)), torch.randint(16, (2, 8)))[1])


def _graph_nodes(tensor) -> set[str]:
    seen, todo = set(), [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            todo.extend(fn for fn, _ in node.next_functions)
    return {node.name() for node in seen}


@pytest.mark.parametrize("residual", ["delta", "write"])
def test_fused_switch_changes_the_graph_not_the_values_or_gradients(residual):
    """delta_fused=False trains through the plain expressions; True through the fused nodes: same numbers."""
    config = dataclasses.replace(BASE, residual=residual, delta_value_dim=3)
    idx, runs = torch.randint(16, (2, 8)), {}
    for fused in (True, False):
        torch.manual_seed(0)
        model = ResonanceLM(dataclasses.replace(config, delta_fused=fused)).double()
        for reader in (m for m in model.modules() if isinstance(m, StateReader)):
            reader.conv_weight.data.normal_(generator=torch.Generator().manual_seed(1))  # non-trivial taps
        _, loss = model(idx, idx)
        loss.backward()
        runs[fused] = (loss, {n: p.grad for n, p in model.named_parameters()}, _graph_nodes(loss))
    (loss_f, grads_f, nodes_f), (loss_r, grads_r, nodes_r) = runs[True], runs[False]
    assert torch.allclose(loss_f, loss_r, atol=1e-12)
    assert all(torch.allclose(grads_f[n], grads_r[n], atol=1e-10) for n in grads_f)
    fused_nodes = {"ShortConvReadBackward", "MatrixDeltaWriteBackward" if residual == "delta" else "MatrixWriteOnlyBackward"}
    assert fused_nodes <= nodes_f and not fused_nodes & nodes_r


@pytest.mark.parametrize("T", [2, 6])  # T < kernel_size: the lags that reach before t = 0 drop out
@pytest.mark.parametrize("channel_major", [True, False])
def test_fused_nodes_pass_gradcheck(T, channel_major):
    from resonance_lib.delta import MatrixDeltaWrite, MatrixWriteOnly, ShortConvRead, plain_write_only

    torch.manual_seed(0)
    reader = StateReader(5, 3).double()
    reader.conv_weight.data.normal_()
    state = torch.randn(2, T, 5, 3, dtype=torch.double)
    if channel_major:  # the layout StateReader.expand makes, which the fused nodes read without a copy
        state = state.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1)
    assert state.permute(0, 3, 1, 2).is_contiguous() == channel_major
    state.requires_grad_()
    taps = reader.taps().detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(ShortConvRead.apply, (state, taps))
    assert torch.allclose(ShortConvRead.apply(state, taps), reader.forward_reference(state), atol=1e-12)
    k = F.normalize(torch.randn(2, T, 5, dtype=torch.double), dim=-1).requires_grad_()
    v, beta = torch.randn(2, T, 3, dtype=torch.double, requires_grad=True), torch.rand(2, T, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(MatrixDeltaWrite.apply, (state, k, v, beta))
    assert torch.allclose(MatrixDeltaWrite.apply(state, k, v, beta), delta_write(state, k, v, beta), atol=1e-12)
    assert torch.autograd.gradcheck(MatrixWriteOnly.apply, (state, k, v, beta))
    assert torch.allclose(MatrixWriteOnly.apply(state, k, v, beta), plain_write_only(state, k, v, beta), atol=1e-12)


@pytest.mark.parametrize("residual", [DeltaResidual, WriteOnlyResidual])
def test_expand_lays_the_state_out_channel_major_and_the_update_keeps_it(residual):
    """(B, d_v, T, d) in memory: the layout the fused update and read use without a copy, kept by every update
    (the write-only control's plain expression too) and by the fused update's gradient."""
    reader, layer = StateReader(4, 3), residual(4, value_dim=3)
    state = reader.expand(torch.randn(2, 5, 4)).requires_grad_()
    assert state.shape == (2, 5, 4, 3) and state.permute(0, 3, 1, 2).is_contiguous()
    assert torch.equal(state[..., 1], state[..., 0]) and torch.equal(state[..., 2], state[..., 0])
    out = layer(state, torch.randn(2, 5, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4))
    assert out.permute(0, 3, 1, 2).is_contiguous()
    reader(out).sum().backward()
    assert state.grad.permute(0, 3, 1, 2).is_contiguous()


def test_taps_are_contiguous_so_each_lag_and_channel_is_a_contiguous_vector():
    """The read's taps W (K, d_v, d) in contiguous memory: the fused read multiplies every (B, T, d) plane by one
    W_{s,c}, which vectorises only when that d-vector is contiguous (a strided one made the read ~2.5× slower)."""
    reader = StateReader(8, 3, kernel_size=4)
    with torch.no_grad():
        reader.conv_weight.normal_()
    taps = reader.taps()
    assert taps.shape == (4, 3, 8) and taps.is_contiguous()
    expected = reader.conv_weight.view(8, 3, 4).flip(-1).permute(2, 1, 0) * reader.read[None, :, None]
    torch.testing.assert_close(taps, expected)

def test_bad_fused_setting_names_the_field():
    with pytest.raises(ValueError, match="delta_fused"):
        dataclasses.replace(BASE, residual="delta", delta_fused="yes")
    with pytest.raises(ValueError, match="fused"):
        StateReader(4, 2, fused=1)


@pytest.mark.parametrize("residual", ["delta", "write"])
def test_compiled_switch_runs_the_plain_forms_through_torch_compile_with_the_same_numbers(residual):
    """delta_compiled=True trains through torch.compile's kernels of the plain update and read (no fused node in
    the graph); values and gradients equal the fused forms'."""
    config = dataclasses.replace(BASE, residual=residual, delta_value_dim=3)
    idx, runs = torch.randint(16, (2, 8)), {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = ResonanceLM(dataclasses.replace(config, delta_compiled=compiled)).double()
        for reader in (m for m in model.modules() if isinstance(m, StateReader)):
            reader.conv_weight.data.normal_(generator=torch.Generator().manual_seed(1))  # non-trivial taps
        _, loss = model(idx, idx)
        loss.backward()
        runs[compiled] = (loss, {n: p.grad for n, p in model.named_parameters()}, _graph_nodes(loss))
    (loss_f, grads_f, nodes_f), (loss_c, grads_c, nodes_c) = runs[False], runs[True]
    assert torch.allclose(loss_f, loss_c, atol=1e-12)
    assert all(torch.allclose(grads_f[n], grads_c[n], atol=1e-10) for n in grads_f)
    assert "ShortConvReadBackward" in nodes_f and "ShortConvReadBackward" not in nodes_c
    assert "CompiledFunctionBackward" in nodes_c and "CompiledFunctionBackward" not in nodes_f


def test_on_compiled_kernels_switches_exactly_the_arms_with_a_matrix_state():
    from resonance_lib.experiments import matched_variants, on_compiled_kernels

    variants = matched_variants(dataclasses.replace(BASE, block_size=8),
                                ["delta_dv1", "delta_dv4", "write_dv4", "sparse_resonance"])
    switched = on_compiled_kernels(variants)
    assert [v.name for v in switched] == [v.name for v in variants]
    assert {v.name for v in switched if v.config.delta_compiled} == {"delta_dv4", "write_dv4"}
    for before, after in zip(variants, switched, strict=True):  # nothing else changes: size, callbacks
        assert dataclasses.replace(after.config, delta_compiled=False) == before.config
        assert after.callbacks is before.callbacks


def test_the_plain_read_is_the_reference_read_written_with_taps():
    from resonance_lib.delta import plain_short_conv_read

    reader = StateReader(5, 3).double()
    reader.conv_weight.data.normal_(generator=torch.Generator().manual_seed(0))
    for T in (2, 7):  # shorter and longer than the kernel
        state = torch.randn(2, T, 5, 3, dtype=torch.double)
        assert torch.allclose(plain_short_conv_read(state, reader.taps()), reader.forward_reference(state), atol=1e-12)


def test_bad_compiled_setting_names_the_field_and_what_it_needs():
    with pytest.raises(ValueError, match="delta_compiled='yes'"):
        dataclasses.replace(BASE, residual="delta", delta_value_dim=2, delta_compiled="yes")
    with pytest.raises(ValueError, match=r"delta_compiled=True .* needs .*delta_value_dim > 1.*delta_value_dim=1"):
        dataclasses.replace(BASE, residual="delta", delta_compiled=True)
    with pytest.raises(ValueError, match=r"delta_compiled=True .*delta_fused=False"):
        dataclasses.replace(BASE, residual="write", delta_value_dim=2, delta_compiled=True, delta_fused=False)
    with pytest.raises(ValueError, match="compiled=True .* value_dim > 1"):
        DeltaResidual(4, value_dim=1, compiled=True)


def test_flops_of_a_compiled_model_are_the_plain_forms_flops():
    """FlopCounterMode is a dispatch mode torch.compile cannot trace through: the compiled forms then run as the
    plain expressions they compile, so the count is theirs."""
    from resonance_lib.compute import flops_per_token
    from resonance_lib.data import SequenceReconstruction

    task = SequenceReconstruction(vocab_size=16, seq_len=8, mode="copy")
    config = dataclasses.replace(BASE, residual="delta", delta_value_dim=2, block_size=16)
    counts = [flops_per_token(ResonanceLM(dataclasses.replace(config, delta_fused=fused, delta_compiled=comp)), task, 2)
              for fused, comp in ((False, False), (True, True))]
    assert counts[0] == counts[1] > 0
