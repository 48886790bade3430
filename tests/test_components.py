"""Every component: its fast form against its reference form (outputs and gradients), and every switch
against the baseline with shared weights (neutralised, the component gives the baseline's logits; perturbed,
it does not). In float64, so that agreement is tight."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from resonance_lib.attention import CausalSelfAttention
from resonance_lib.component import Component
from resonance_lib.components import AddResidual
from resonance_lib.delta import DeltaResidual, StateReader, delta_write
from resonance_lib.halting import HaltingAttention
from resonance_lib.memory import ResonanceMemory
from resonance_lib.model import ResonanceConfig, ResonanceLM
from resonance_lib.phase import PhaseResonanceAttention
from resonance_lib.premanifest import PreManifestHead
from resonance_lib.prime import PrimeMaskedLinear, prime_resonance_mask, prime_resonance_mask_loop

pytestmark = pytest.mark.usefixtures("double_precision")  # see conftest.py

B, T, C, H = 2, 7, 16, 2


def leaf(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).requires_grad_()


# ---------------------------------------------------------------- fast form vs reference form


def standard_attention():
    attn = CausalSelfAttention(C, H)
    x = leaf(B, T, C)
    return attn, lambda: attn(x), lambda: attn.forward_reference(x), [x]


def phase_attention():
    attn = PhaseResonanceAttention(C, H)
    with torch.no_grad():
        attn.head_weight.copy_(torch.tensor([0.7, -1.3]))
    x, phases = leaf(B, T, C), leaf(B, T, 5)
    return attn, lambda: attn(x, phases=phases), lambda: attn.forward_reference(x, phases=phases), [x, phases]


def halting_one_iteration():
    halting, plain = HaltingAttention(C, H, max_iters=1), CausalSelfAttention(C, H)
    plain.load_state_dict(halting.state_dict())  # the same c_attn and c_proj
    x = leaf(B, T, C)
    return halting, lambda: halting(x), lambda: plain.forward_reference(x), [x], plain


def delta_residual(value_dim):
    def case():
        res = DeltaResidual(C, value_dim, beta_init=0.8, v_sigmoid=value_dim == 1)
        state = leaf(B, T, C) if value_dim == 1 else leaf(B, T, C, value_dim)
        update, v_in, context = leaf(B, T, C), leaf(B, T, C), leaf(B, T, C)

        def reference():
            k, beta, v = res.gates(update, v_in, context)
            return delta_write(state, k, v.squeeze(-1) if value_dim == 1 else v, beta)

        return res, lambda: res(state, update, v_in, context), reference, [state, update, v_in, context]
    return case


def state_reader():
    reader = StateReader(C, 3)
    with torch.no_grad():
        reader.conv_weight.normal_()
        reader.read.normal_()
    state = leaf(B, T, C, 3)

    def reference():  # a grouped causal conv over time on the d·d_v channels, then the read vector
        x = state.reshape(B, T, C * 3).transpose(1, 2)
        conv = F.conv1d(F.pad(x, (reader.kernel_size - 1, 0)), reader.conv_weight, groups=C * 3)
        return (conv.transpose(1, 2).reshape(B, T, C, 3) * reader.read).sum(-1)

    return reader, lambda: reader(state), reference, [state]


def memory():
    mem = ResonanceMemory(C, n_slots=5, key_dim=4)
    h = leaf(B, T, C)
    return mem, lambda: mem(h), lambda: mem.forward_reference(h), [h]


def premanifest():
    head = PreManifestHead(C, max_iters=3, epsilon=0.6)
    emb, h = leaf(11, C), leaf(B, T, C, scale=0.5)
    return head, lambda: head(h, emb), lambda: head.forward_reference(h, emb), [h, emb]


def prime_masked_linear():
    layer = PrimeMaskedLinear(C, 12, primes=(3, 5))
    x = leaf(B, T, C)
    mask = prime_resonance_mask_loop(12, C, (3, 5))  # the plan's loop form of the mask
    return layer, lambda: layer(x), lambda: x @ (layer.weight * mask).T + layer.bias, [x]


CASES = {"standard attention": standard_attention, "phase attention": phase_attention,
         "halting, max_iters=1": halting_one_iteration, "delta residual d_v=1": delta_residual(1),
         "delta residual d_v=4": delta_residual(4), "state reader": state_reader, "memory": memory,
         "pre-manifest head": premanifest, "prime-masked linear": prime_masked_linear}


@pytest.mark.parametrize("name", list(CASES))
def test_fast_form_equals_reference_form_outputs_and_gradients(name):
    torch.manual_seed(0)
    module, fast, reference, inputs, *twins = CASES[name]()
    out_fast, out_ref = fast(), reference()
    assert out_fast.shape == out_ref.shape
    assert torch.allclose(out_fast, out_ref, atol=1e-10, rtol=1e-8), (out_fast - out_ref).abs().max()
    params = [p for p in module.parameters()]
    twin_params = [p for twin in twins for p in twin.parameters()]  # the reference's own copy, if any
    weight = torch.randn_like(out_fast)  # a random cotangent, so no gradient is trivially symmetric
    g_fast = torch.autograd.grad((out_fast * weight).sum(), inputs + params, allow_unused=True)
    g_ref = torch.autograd.grad((out_ref * weight).sum(), inputs + (twin_params or params), allow_unused=True)
    for a, b in zip(g_fast, g_ref, strict=True):
        if a is None or b is None:
            assert (a is None or not a.any()) and (b is None or not b.any())
            continue
        assert torch.allclose(a, b, atol=1e-9, rtol=1e-7), (a - b).abs().max()


def test_the_prime_mask_equals_the_plans_loop():
    for rows, cols, primes in ((23, 31, (7, 11, 13, 17, 19)), (10, 6, (2, 3))):
        assert torch.equal(prime_resonance_mask(rows, cols, primes), prime_resonance_mask_loop(rows, cols, primes))


# ---------------------------------------------------------------- switches against the baseline, shared weights

BASE = ResonanceConfig(vocab_size=13, block_size=T, n_layer=2, n_head=H, n_embd=C)


def share(model: ResonanceLM, baseline: ResonanceLM) -> ResonanceLM:
    """Copy every weight the two models have in common (same name and shape, and the token matrix)."""
    own = model.state_dict()
    with torch.no_grad():
        for name, tensor in baseline.state_dict().items():
            if name in own and own[name].shape == tensor.shape:
                own[name].copy_(tensor)
        model.wte.token_weight.copy_(baseline.wte.token_weight)
    return model


def no_positions(model):
    with torch.no_grad():
        model.wpe.weight.zero_()


def swap_delta_for_add(model):
    model.delta_rules = [(b.res_1, b.res_2) for b in model.blocks]
    for block in model.blocks:
        block.res_1, block.res_2 = AddResidual(), AddResidual()


def restore_delta(model):
    for block, (res_1, res_2) in zip(model.blocks, model.delta_rules, strict=True):
        block.res_1, block.res_2 = res_1, res_2


def randomise(getter):
    def apply(model):
        with torch.no_grad():
            for t in getter(model):
                t.normal_(0.0, 0.1)
    return apply


def set_(getter, value):
    def apply(model):
        with torch.no_grad():
            for t in getter(model):
                t.fill_(value)
    return apply


def every(attr):
    return lambda model: [getattr(b.attn, attr) for b in model.blocks]


# name: (switches, neutralise the component, then perturb it, what to do to the baseline for the comparison)
SWITCHES = {
    "delta residual": ({"residual": "delta"}, swap_delta_for_add, restore_delta, None),
    "phase attention": ({"embedding": "phase", "attention": "phase"},
                        lambda m: (set_(every("head_weight"), 0.0)(m), set_(lambda m: [m.wte.blend_logit],
                                                                             float("-inf"))(m)),
                        set_(every("head_weight"), 1.0), None),
    "halting attention": ({"attention": "halting", "halting_max_iters": 3},
                          lambda m: [setattr(b.attn, "max_iters", 1) for b in m.blocks],
                          lambda m: [(setattr(b.attn, "max_iters", 3), setattr(b.attn, "epsilon", 1e-6))
                                     for b in m.blocks], None),
    "prime encoder": ({"encoder": "prime"}, set_(lambda m: [m.wpe.out.weight], 0.0),
                      randomise(lambda m: [m.wpe.out.weight]), no_positions),
    "memory": ({"memory": True}, set_(lambda m: [m.memory.adapter.weight, m.memory.adapter.bias], 0.0),
               randomise(lambda m: [m.memory.adapter.weight]), None),
    "pre-manifest head": ({"head": "premanifest"}, lambda m: setattr(m.head, "epsilon", 2.0),  # never uncertain
                          lambda m: setattr(m.head, "epsilon", 1e-9), None),
    "prime FFN mask": ({"ffn_mask": "prime"},
                       set_(lambda m: [b.mlp.c_fc.fixed_mask for b in m.blocks]
                            + [b.mlp.c_proj.fixed_mask for b in m.blocks], True),
                       lambda m: None, None),
}


@pytest.mark.parametrize("name", list(SWITCHES))
def test_a_neutralised_component_gives_the_baselines_logits_and_a_perturbed_one_does_not(name):
    changes, neutralise, perturb, prepare_baseline = SWITCHES[name]
    torch.manual_seed(0)
    baseline = ResonanceLM(BASE).eval()
    model = share(ResonanceLM(dataclasses.replace(BASE, **changes)), baseline).eval()
    if prepare_baseline:
        prepare_baseline(baseline)
    idx = torch.randint(13, (B, T))
    reference = baseline(idx)[0]
    neutralise(model)
    with torch.no_grad():
        assert torch.allclose(model(idx)[0], reference, atol=1e-10), f"{name}: neutralised, not the baseline"
        perturb(model)
        if name == "prime FFN mask":  # the mask itself is the component: restore it
            for block in model.blocks:
                for layer in (block.mlp.c_fc, block.mlp.c_proj):
                    layer.fixed_mask.copy_(prime_resonance_mask(*layer.weight.shape, BASE.primes))
        assert not torch.allclose(model(idx)[0], reference, atol=1e-4), f"{name}: perturbed, still the baseline"


# ---------------------------------------------------------------- every component owns its initialisation


@pytest.mark.parametrize("make, attribute, expected", [
    (lambda: DeltaResidual(8, beta_init=0.5), lambda m: 2 * torch.sigmoid(m.beta_proj.bias), 0.5),
    (lambda: StateReader(8, 4), lambda m: m.read, 0.25),
    (lambda: PhaseResonanceAttention(8, 2, w_init=0.3), lambda m: m.head_weight, 0.3),
])
def test_reset_parameters_restores_the_mechanisms_init_after_a_host_overwrote_it(make, attribute, expected):
    module = make()
    assert isinstance(module, Component)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.02)  # what nanoGPT's _init_weights does to Linear layers, or worse
    module.reset_parameters()
    assert torch.allclose(attribute(module), torch.full_like(attribute(module), expected))
