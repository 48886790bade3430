import dataclasses
import math

import pytest
import torch

from resonance_lib.model import ResonanceConfig, ResonanceLM
from resonance_lib.phase import (
    PhaseEmbedding,
    PhaseResonanceAttention,
    phase_features,
    phonetic_phase_init,
    resonance_matrix,
    rhyme_groups,
)

pytestmark = pytest.mark.usefixtures("double_precision")  # see conftest.py


def test_resonance_matrix_is_the_inner_product_of_phase_features():
    phases = torch.randn(2, 7, 5)
    c = phase_features(phases)
    assert torch.allclose(resonance_matrix(phases), c @ c.transpose(-2, -1), atol=1e-12)
    assert torch.allclose(resonance_matrix(phases).diagonal(dim1=-2, dim2=-1), torch.ones(2, 7))


def test_fast_attention_equals_explicit_outputs_and_gradients():
    torch.manual_seed(0)
    attn = PhaseResonanceAttention(32, 4)
    attn.head_weight.data = torch.tensor([0.5, -1.0, 2.0, 0.1])
    x = torch.randn(3, 9, 32, requires_grad=True)
    phases = torch.randn(3, 9, 6, requires_grad=True)
    fast, explicit = attn(x, phases=phases), attn.forward_reference(x, phases=phases)
    assert torch.allclose(fast, explicit, atol=1e-10)
    g_fast = torch.autograd.grad(fast.square().sum(), [x, phases, attn.head_weight])
    g_explicit = torch.autograd.grad(explicit.square().sum(), [x, phases, attn.head_weight])
    for a, b in zip(g_fast, g_explicit, strict=True):
        assert torch.allclose(a, b, atol=1e-9)


def test_fast_form_is_causal_and_the_bias_matters():
    torch.manual_seed(0)
    attn = PhaseResonanceAttention(16, 2)
    x, phases = torch.randn(1, 6, 16), torch.randn(1, 6, 4)
    later = phases.clone()
    later[:, 4:] += 1.0
    assert torch.allclose(attn(x, phases=phases)[:, :4], attn(x, phases=later)[:, :4], atol=1e-12)
    assert not torch.allclose(attn(x, phases=phases)[:, 4:], attn(x, phases=later)[:, 4:])
    attn.head_weight.data.zero_()
    assert torch.allclose(attn(x, phases=phases), attn(x, phases=later), atol=1e-12)  # w_h = 0: no part
    with pytest.raises(ValueError, match="needs the token phases"):
        attn(x)


def test_phase_embedding_blend_and_phases():
    emb = PhaseEmbedding(10, 8, n_frequencies=4, blend_init=0.3)
    x, features = emb(torch.tensor([[1, 2, 3]]))
    phases = features["phases"]
    assert x.shape == (1, 3, 8) and phases.shape == (1, 3, 4)
    assert emb.blend.item() == pytest.approx(0.3)
    with pytest.raises(ValueError, match="blend_init=1.0"):
        PhaseEmbedding(10, 8, blend_init=1.0)


def test_rhyme_groups_on_known_words():
    groups = rhyme_groups(["cat", "hat", "dog", "log", "zzqxv"])
    together = [g for g in groups.values() if "cat" in g][0]
    assert "hat" in together and "dog" not in together
    assert any(set(g) >= {"dog", "log"} for g in groups.values())
    assert all("zzqxv" not in g for g in groups.values())


def test_phonetic_init_puts_rhymes_closer_in_phase():
    words = ["cat", "hat", "bat", "mat", "dog", "log", "fog", "frog", "tree", "free", "sea"]
    table = phonetic_phase_init(words, n_frequencies=16, seed=0)
    index = {w: i for i, w in enumerate(words)}

    def distance(a, b):
        return (table[index[a]] - table[index[b]]).norm().item()

    same = [distance("cat", "hat"), distance("dog", "fog"), distance("tree", "free")]
    different = [distance("cat", "dog"), distance("hat", "tree"), distance("fog", "sea")]
    assert max(same) < min(different)


def test_phonetic_init_refuses_a_character_vocabulary():
    with pytest.raises(ValueError, match="needs a word-level vocabulary"):
        phonetic_phase_init(list("abcdefghij"))


BASE = ResonanceConfig(vocab_size=12, block_size=8, n_layer=2, n_head=2, n_embd=16)
WORDS = ["<unk>", "cat", "hat", "bat", "dog", "log", "fog", "tree", "free", "sea", "the", "and"]


def test_phase_switch_changes_the_model_and_counts_its_parameters():
    idx = torch.randint(12, (2, 8))
    torch.manual_seed(0)
    plain = ResonanceLM(BASE)
    torch.manual_seed(0)
    phased = ResonanceLM(dataclasses.replace(BASE, embedding="phase", attention="phase", phase_frequencies=4))
    assert not torch.allclose(plain(idx)[0], phased(idx)[0])
    extra = sum(p.numel() for p in phased.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra == 12 * 4 + 2 * 4 * 16 + 1 + 2 * 2  # phase table, projection, blend, w_h per layer
    assert phased.lm_head.weight is phased.wte.semantic.weight


def test_phase_init_switch_reaches_the_table():
    torch.manual_seed(0)
    random = ResonanceLM(dataclasses.replace(BASE, embedding="phase", attention="phase"))
    torch.manual_seed(0)
    phonetic = ResonanceLM(dataclasses.replace(BASE, embedding="phase", attention="phase", phase_init="phonetic"), vocab=WORDS)
    table = phonetic.wte.phase.weight
    assert (table[1] - table[2]).norm() < (table[1] - table[4]).norm()  # cat~hat, not cat~dog
    assert not torch.allclose(random.wte.phase.weight, table)
    with pytest.raises(ValueError, match="needs vocab="):
        ResonanceLM(dataclasses.replace(BASE, embedding="phase", attention="phase", phase_init="phonetic"))


@pytest.mark.parametrize(
    "changes, pattern",
    [({"attention": "resonant"}, r"attention='resonant'; allowed: \['standard', 'phase', 'halting'\]"),
     ({"embedding": "phase", "phase_init": "rhyme"}, r"phase_init='rhyme'; allowed"),
     ({"phase_init": "phonetic"}, r"phase_init='phonetic' needs embedding='phase'"),
     ({"attention": "phase"}, r"attention='phase' reads the token phases: it needs embedding='phase'"),
     ({"embedding": "phase", "phase_frequencies": 0}, r"phase_frequencies=0")],
)
def test_bad_phase_config(changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        dataclasses.replace(BASE, **changes)


def test_the_sources_phase_embedding_gates_per_dimension_from_sigmoid_of_0_3_and_projects_raw_phases():
    from resonance_lib.phase import PhaseEmbedding, SourcePhaseEmbedding

    torch.manual_seed(0)
    source, ours = SourcePhaseEmbedding(12, 8, n_frequencies=4), PhaseEmbedding(12, 8, n_frequencies=4)
    assert source.blend.shape == (8,) and torch.allclose(source.blend, torch.sigmoid(torch.tensor(0.3)))
    assert ours.blend.shape == () and ours.blend.item() == pytest.approx(0.3)
    idx = torch.tensor([[1, 2, 3]])
    for embedding, periodic in ((ours, True), (source, False)):
        before, _ = embedding(idx)
        with torch.no_grad():
            embedding.phase.weight += 2 * math.pi  # the same phases modulo 2π
        after, features = embedding(idx)
        assert torch.allclose(before, after, atol=1e-5) is periodic
        assert features["phases"].shape == (1, 3, 4)
    model = ResonanceLM(dataclasses.replace(BASE, embedding="phase_source", attention="phase"))
    logits, _ = model(torch.zeros(1, 5, dtype=torch.long))
    assert torch.isfinite(logits).all() and isinstance(model.wte, SourcePhaseEmbedding)


def test_phase_use_reads_the_blend_and_each_layers_bias_weight_off_a_model():
    from resonance_lib.phase import PhaseProbe, phase_use

    model = ResonanceLM(dataclasses.replace(BASE, embedding="phase", attention="phase", phase_frequencies=4))
    with torch.no_grad():
        model.wte.blend_logit.fill_(0.0)  # g = sigmoid(0) = 0.5
        for i, block in enumerate(model.blocks):
            block.attn.head_weight.copy_(torch.tensor([-(i + 1.0), i + 3.0]))  # |w_h| means 2, 3
    use = phase_use(model)
    assert use == pytest.approx({"phase_blend": 0.5, "w_abs_L0": 2.0, "w_abs_L1": 3.0})
    metrics = {}
    PhaseProbe().on_eval(type("State", (), {"model": model})(), metrics)
    assert metrics == use  # the probe adds the same numbers to an eval row
