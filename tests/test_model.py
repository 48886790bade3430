import dataclasses

import pytest
import torch

from resonance_lib.model import ResonanceConfig, ResonanceLM, config_params, count_params, match_params

SMALL = ResonanceConfig(vocab_size=32, block_size=16, n_layer=2, n_head=2, n_embd=32)


@pytest.mark.parametrize(
    "field, value, pattern",
    [
        ("n_head", 3, r"n_embd=32 is not divisible by n_head=3"),
        ("n_embd", 0, r"n_embd=0 must be a positive integer"),
        ("n_layer", -1, r"n_layer=-1 must be a positive integer"),
        ("vocab_size", 2.5, r"vocab_size=2.5 must be a positive integer"),
        ("block_size", 0, r"block_size=0"),
        ("dropout", 1.0, r"dropout=1.0 must lie in \[0, 1\)"),
        ("ffn_hidden", 0, r"ffn_hidden=0"),
        ("position_init_std", 0.0, r"position_init_std=0.0 must lie in \(0, inf\]"),
    ],
)
def test_bad_config_names_field_and_value(field, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        dataclasses.replace(SMALL, **{field: value})


def test_block_size_exceeded_at_forward_time():
    model = ResonanceLM(SMALL)
    with pytest.raises(ValueError, match="sequence length 17 exceeds block_size=16"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_forward_shapes_loss_and_tying():
    torch.manual_seed(0)
    model = ResonanceLM(SMALL)
    idx, targets = torch.randint(32, (3, 16)), torch.randint(32, (3, 16))
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 16, 32)
    assert abs(loss.item() - torch.log(torch.tensor(32.0)).item()) < 0.3  # near-uniform at init
    assert model.lm_head.weight is model.wte.weight
    assert count_params(model) == config_params(SMALL)


def test_causality_future_tokens_do_not_change_past_logits():
    torch.manual_seed(0)
    model = ResonanceLM(SMALL).eval()
    a = torch.randint(32, (1, 16))
    b = a.clone()
    b[0, 10:] = (b[0, 10:] + 1) % 32
    la, _ = model(a)
    lb, _ = model(b)
    assert torch.allclose(la[0, :10], lb[0, :10], atol=1e-6)
    assert not torch.allclose(la[0, 10:], lb[0, 10:])


def test_ignore_index_targets_are_not_scored():
    torch.manual_seed(0)
    model = ResonanceLM(SMALL)
    idx = torch.randint(32, (2, 16))
    targets = idx.clone()
    targets[:, :8] = -100
    _, masked = model(idx, targets)
    logits, _ = model(idx)
    expected = torch.nn.functional.cross_entropy(logits[:, 8:].reshape(-1, 32), idx[:, 8:].reshape(-1))
    assert torch.allclose(masked, expected, atol=1e-6)


@pytest.mark.parametrize("scale", [0.6, 0.9, 1.1, 1.5])
def test_match_params_within_tolerance(scale):
    base = ResonanceConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    target = int(config_params(base) * scale)
    matched = match_params(base, target)
    assert abs(config_params(matched) - target) <= 0.02 * target
    assert matched.n_layer == 4 and matched.n_head == 4 and matched.n_embd % 4 == 0


def test_match_params_keeps_width_when_the_ffn_suffices():
    base = ResonanceConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    matched = match_params(base, int(config_params(base) * 0.97))
    assert matched.n_embd == 128 and matched.ffn_hidden < 512


def test_match_params_rejects_bad_targets():
    with pytest.raises(ValueError, match="target_params=0"):
        match_params(SMALL, 0)
    with pytest.raises(ValueError, match="tolerance=0"):
        match_params(SMALL, 1000, tolerance=0)


def test_generate_extends_the_context():
    torch.manual_seed(0)
    model = ResonanceLM(SMALL)
    out = model.generate(torch.zeros(1, 1, dtype=torch.long), 20, top_k=5)
    assert out.shape == (1, 21) and out.max() < 32


VIT = ResonanceConfig(vocab_size=10, block_size=16, n_layer=2, n_head=2, n_embd=32)


@pytest.mark.parametrize("changes", [{}, {"residual": "delta"}, {"residual": "delta", "delta_value_dim": 3},
                                     {"attention": "halting"}, {"ffn_mask": "prime"}])
def test_patch_classifier_takes_every_block_switch(changes):
    from resonance_lib.model import PatchClassifier

    torch.manual_seed(0)
    model = PatchClassifier(dataclasses.replace(VIT, **changes), patch_dim=12)
    logits, loss = model(torch.randn(3, 16, 12), torch.tensor([1, 2, 3]))
    assert logits.shape == (3, 10) and torch.isfinite(loss)
    assert count_params(model) == config_params(model.config, lambda c: PatchClassifier(c, 12))


@pytest.mark.parametrize("changes, field", [({"embedding": "phase", "attention": "phase"}, "embedding"),
                                            ({"encoder": "prime"}, "encoder"), ({"memory": True}, "memory"),
                                            ({"head": "premanifest"}, "head")])
def test_patch_classifier_refuses_slots_that_need_tokens(changes, field):
    from resonance_lib.model import PatchClassifier

    with pytest.raises(ValueError, match=rf"PatchClassifier: {field}=.*allowed"):
        PatchClassifier(dataclasses.replace(VIT, **changes), patch_dim=12)


def test_match_params_sizes_the_classifier_not_a_language_model():
    from functools import partial

    from resonance_lib.model import PatchClassifier

    vit = partial(PatchClassifier, patch_dim=12)
    target = config_params(VIT, vit)
    assert target != config_params(VIT)  # a classifier head and patch embedding, not a tied vocabulary
    matched = match_params(dataclasses.replace(VIT, residual="delta"), target, model=vit)
    assert abs(config_params(matched, vit) - target) <= 0.02 * target


def test_position_init_std_draws_the_position_table_and_nothing_else():
    torch.manual_seed(0)
    nanogpt = ResonanceLM(SMALL)
    torch.manual_seed(0)
    default = ResonanceLM(dataclasses.replace(SMALL, position_init_std=0.02))
    for (name, a), b in zip(nanogpt.state_dict().items(), default.state_dict().values(), strict=True):
        assert torch.equal(a, b), name  # the default changes nothing, bit for bit
    torch.manual_seed(0)
    source = ResonanceLM(dataclasses.replace(SMALL, position_init_std=1.0))  # the phase source's standard model
    assert source.wpe.weight.std().item() == pytest.approx(1.0, rel=0.1)
    for (name, a), b in zip(nanogpt.state_dict().items(), source.state_dict().values(), strict=True):
        assert torch.equal(a, b) is (name != "wpe.weight"), name
    with pytest.raises(ValueError, match="position_init_std=1.0 sets a learned position table: it needs "
                                         "encoder='learned'"):
        dataclasses.replace(SMALL, encoder="prime", position_init_std=1.0)
