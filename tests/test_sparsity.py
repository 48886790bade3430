import dataclasses
import io

import networkx as nx
import pytest
import torch

from resonance_lib.data import SequenceReconstruction
from resonance_lib.model import ResonanceConfig, ResonanceLM
from resonance_lib.sparsity import (
    STRATEGIES,
    Sparsifier,
    SparsityConfig,
    export_compressed,
    import_compressed,
    sparsify,
)
from resonance_lib.train import Callback, TrainConfig, train

CONFIG = ResonanceConfig(vocab_size=32, block_size=16, n_layer=3, n_head=2, n_embd=32)
TASK = SequenceReconstruction(vocab_size=32, seq_len=8, mode="copy")
RUN = TrainConfig(max_iters=60, batch_size=8, eval_interval=20, eval_iters=1, warmup_iters=0, device="cpu")


def model(seed=0):
    torch.manual_seed(seed)
    return ResonanceLM(CONFIG)


class SparsityEveryStep(Callback):
    """Records, after every optimizer step (and after the sparsity callback), the measured sparsity."""

    def __init__(self, sparsifier):
        self.sparsifier, self.seen = sparsifier, []

    def on_step_end(self, state):
        s = self.sparsifier
        moments_clean = all((state.optimizer.state[p]["exp_avg"][~s.masks[n]] == 0).all()
                            for n, p in s.params.items() if p in state.optimizer.state)
        self.seen.append((state.step, s.weight_sparsity(), s.sparsity(), moments_clean))


@pytest.mark.parametrize("strategy", ["static", "gmp", "set", "rigl", "resonance"])
def test_sparsity_holds_within_half_a_percent_after_the_ramp(strategy):
    m = model()
    cb = sparsify(m, strategy=strategy, end_step=20, update_interval=5, wave_amplitude=0.5, wave_period=15)
    probe = SparsityEveryStep(cb.sparsifier)
    train(m, TASK, RUN, callbacks=[cb, probe])
    after_ramp = [(w, s, clean) for step, w, s, clean in probe.seen if step >= 20]
    assert after_ramp and all(abs(s - 0.73) <= 0.005 for _, s, _ in after_ramp)
    assert all(w >= s - 1e-9 for w, s, _ in after_ramp)  # masked weights are exactly zero
    assert all(clean for _, _, clean in after_ramp)  # and carry no AdamW momentum


def test_dense_keeps_everything_and_strategies_differ():
    finals = {}
    for strategy in STRATEGIES:
        m = model()
        cb = sparsify(m, strategy=strategy, end_step=20, update_interval=5)
        train(m, TASK, RUN, callbacks=[cb])
        finals[strategy] = torch.cat([p.detach().flatten() for p in cb.sparsifier.params.values()])
    assert (finals["dense"] != 0).all()
    for a in STRATEGIES:
        for b in STRATEGIES:
            if a < b:
                assert not torch.equal(finals[a] != 0, finals[b] != 0), f"{a} and {b} gave the same masks"


def test_gmp_follows_the_cubic_schedule_and_never_regrows():
    m = model()
    s = Sparsifier(m, SparsityConfig(strategy="gmp", start_step=0, end_step=100, update_interval=10))
    assert s.scheduled_sparsity(50) == pytest.approx(0.73 * (1 - 0.5**3))
    s.update(50)
    before = {n: mask.clone() for n, mask in s.masks.items()}
    for p in s.params.values():
        p.data.add_(1.0)  # even if every weight grew, pruned ones must stay pruned
    s.update(60)
    assert all((s.masks[n] <= before[n]).all() for n in before)


def test_rigl_regrows_where_the_gradient_is_largest():
    m = model()
    s = Sparsifier(m, SparsityConfig(strategy="rigl", drop_fraction=0.5, end_step=100))
    name = next(iter(s.params))
    inactive = ~s.masks[name]
    scores = torch.zeros_like(s.params[name])
    hot = inactive.nonzero()[:5]
    scores[hot[:, 0], hot[:, 1]] = 10.0
    s._grad_scores = {name: scores}
    s.update(1)
    assert s.masks[name][hot[:, 0], hot[:, 1]].all()
    assert (s.params[name][hot[:, 0], hot[:, 1]] == 0).all()  # regrown at zero


def test_resonance_revives_from_etched_statistics_and_twist_flips_their_sign():
    def revived_values(twist):
        m = model()
        s = Sparsifier(m, SparsityConfig(strategy="resonance", end_step=0, revive_ratio=0.2, twist_mode=twist,
                                         noise_floor=0.0, seed=3))
        name = "blocks.0.mlp.c_fc.weight"
        with torch.no_grad():
            s.params[name].abs_().add_(0.001)  # every weight positive: the pruned ones have a positive mean
        small_before = s.params[name].clone()
        s.update(1)
        revived = s.masks[name] & (s.params[name] != small_before)
        assert s.revived_last > 0 and revived.any()
        return s.params[name][revived]

    plain, twisted = revived_values(False), revived_values(True)
    assert plain.mean() > 0 > twisted.mean()


def test_wave_modulates_the_revive_fraction():
    s = Sparsifier(model(), SparsityConfig(strategy="resonance", revive_ratio=0.1, wave_amplitude=0.5, wave_period=100))
    assert s.revive_fraction(25) == pytest.approx(0.15) and s.revive_fraction(75) == pytest.approx(0.05)
    flat = Sparsifier(model(), SparsityConfig(strategy="resonance", revive_ratio=0.1))
    assert flat.revive_fraction(25) == flat.revive_fraction(75) == pytest.approx(0.1)


def test_depth_ramp_keeps_the_global_target_and_curvature_changes_it():
    s = Sparsifier(model(), SparsityConfig(strategy="resonance", depth_gradient_exponent=2.0, revive_ratio=0.05))
    targets = s.layer_targets(0.73)
    numel = {n: p.numel() for n, p in s.params.items()}
    assert sum(targets[n] * numel[n] for n in numel) / sum(numel.values()) == pytest.approx(0.73)
    assert targets["blocks.0.mlp.c_fc.weight"] < targets["blocks.2.mlp.c_fc.weight"]
    curved = Sparsifier(model(), SparsityConfig(strategy="resonance", depth_gradient_exponent=2.0,
                                                curvature_exponent=2.0, revive_ratio=0.05)).layer_targets(0.73)
    assert curved["blocks.2.mlp.c_fc.weight"] < targets["blocks.2.mlp.c_fc.weight"]  # a flatter ramp


def test_exponential_ramp_differs_from_gmp_and_decay_rate_matters():
    fast = Sparsifier(model(), SparsityConfig(strategy="resonance", end_step=100, decay_rate=10.0))
    slow = Sparsifier(model(), SparsityConfig(strategy="resonance", end_step=100, decay_rate=1.0))
    assert fast.scheduled_sparsity(20) > slow.scheduled_sparsity(20)
    assert fast.scheduled_sparsity(100) == slow.scheduled_sparsity(100) == 0.73


def test_etch_memory_records_ceased_units_and_meta_revives_them():
    m = model()
    s = Sparsifier(m, SparsityConfig(strategy="resonance", end_step=0, etch_memory=True, memory_revive_prob=1.0,
                                     revive_ratio=0.2, seed=1))
    name = "blocks.1.mlp.c_proj.weight"
    with torch.no_grad():
        s.params[name][3].fill_(0.0)  # a neuron whose every incoming weight is zero: it will cease
    s.update(1)
    assert isinstance(s.etch_graph, nx.Graph) and (name, 3) in s.etch_graph
    s.etch_graph.remove_nodes_from([v for v in list(s.etch_graph) if v != (name, 3)])
    s.update(2)  # memory_revive_prob = 1: the one ceased unit left is revived first
    assert (name, 3) not in s.etch_graph and s.masks[name][3].any()
    off = Sparsifier(model(), SparsityConfig(strategy="resonance", end_step=0))
    off.update(1)
    assert off.etch_graph.number_of_nodes() == 0


def test_compressed_export_reloads_identical_logits_and_is_small():
    m = model()
    cb = sparsify(m, strategy="static")
    train(m, TASK, dataclasses.replace(RUN, max_iters=5), callbacks=[cb])
    blob = export_compressed(m)
    dense = io.BytesIO()
    torch.save({k: v for k, v in m.state_dict().items() if not k.endswith("_mask")}, dense)
    assert len(blob) < 0.5 * len(dense.getvalue())
    fresh = model(seed=5)
    sparsify(fresh, strategy="static", seed=9)
    import_compressed(fresh, blob)
    x = torch.randint(32, (2, 16))
    assert torch.equal(m.eval()(x)[0], fresh.eval()(x)[0])
    assert all(torch.equal(fresh.sparsifier.masks[n], cb.sparsifier.masks[n]) for n in cb.sparsifier.masks)


def test_prune_and_revive_cycle_on_the_model():
    m = model()
    with pytest.raises(RuntimeError, match="no sparsifier attached"):
        m.prune_and_revive_cycle()
    sparsify(m, strategy="resonance", end_step=300, update_interval=100)
    m.prune_and_revive_cycle()
    m.prune_and_revive_cycle()
    m.prune_and_revive_cycle()  # the third cycle reaches the end of the ramp
    assert m.sparsifier.sparsity() == pytest.approx(0.73, abs=0.005)


def test_sparsity_checkpoint_resume_is_identical(tmp_path):
    straight = model()
    train(straight, TASK, RUN, callbacks=[sparsify(straight, strategy="set", end_step=20, update_interval=5)])
    first = model()
    ckpt = tmp_path / "run.pt"
    train(first, TASK, dataclasses.replace(RUN, max_iters=40, lr_decay_iters=60, checkpoint_path=str(ckpt)),
          callbacks=[sparsify(first, strategy="set", end_step=20, update_interval=5)])
    resumed = model(seed=7)
    train(resumed, TASK, RUN, callbacks=[sparsify(resumed, strategy="set", end_step=20, update_interval=5)],
          resume_from=ckpt)
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "changes, pattern",
    [({"target_sparsity": 1.0}, r"target_sparsity=1.0 must lie in \[0, 1\)"),
     ({"target_sparsity": -0.1}, r"target_sparsity=-0.1"),
     ({"strategy": "lottery"}, r"strategy='lottery'; allowed: \['dense', 'static', 'gmp', 'set', 'rigl', 'resonance'\]"),
     ({"revive_ratio": 1.5}, r"revive_ratio=1.5 must lie in \[0, 1\]"),
     ({"revive_ratio": -0.1}, r"revive_ratio=-0.1")],
)
def test_bad_sparsity_config(changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        SparsityConfig(**changes)


def test_unknown_weight_name_is_refused():
    with pytest.raises(ValueError, match=r"weights \['blocks.0.attn.q.weight'\] are not parameters"):
        Sparsifier(model(), SparsityConfig(weights=("blocks.0.attn.q.weight",)))


def test_revive_ratio_that_cannot_hold_the_target_is_refused():
    with pytest.raises(ValueError, match="cannot hold target_sparsity=0.73"):
        SparsityConfig(strategy="resonance", revive_ratio=0.5, end_step=0)
    with pytest.raises(ValueError, match="cannot hold layer blocks.2"):  # the depth ramp's deepest layer
        Sparsifier(model(), SparsityConfig(strategy="resonance", revive_ratio=0.2, depth_gradient_exponent=2.0))


@pytest.mark.parametrize("device", ["meta", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA"))])
def test_masks_follow_the_model_to_another_device(device):
    """Sparsifiers are attached before the trainer moves the model: their masks must move with it."""
    from resonance_lib.model import ResonanceConfig, ResonanceLM
    from resonance_lib.sparsity import sparsify

    model = ResonanceLM(ResonanceConfig(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=16))
    callback = sparsify(model, strategy="rigl", target_sparsity=0.5, end_step=10)
    model.to(device)
    callback.sparsifier.apply()
    callback.sparsifier.mask_gradients()
    assert {m.device.type for m in callback.sparsifier.masks.values()} == {device}


def test_the_seeds_rule_at_their_threshold_prunes_almost_nothing():
    from resonance_lib.sparsity import SourceRuleCallback

    m = model()
    rule = SourceRuleCallback(m, interval=10)  # the public code's threshold, 5 × 8.49e-6
    rule.cycle(step=10)
    assert rule.history[0]["zero_after_prune"] < 0.01


def test_the_seeds_revive_writes_into_a_copy_and_ours_into_the_weight():
    from resonance_lib.sparsity import SourceRuleCallback, magnitude_threshold, zero_fraction

    as_published, as_meant = model(), model()
    tau = magnitude_threshold(as_published, 0.73)
    for m, in_place in ((as_published, False), (as_meant, True)):
        rule = SourceRuleCallback(m, interval=10, threshold=tau, revive_in_place=in_place, seed=1)
        rule.cycle(step=10)
        record = rule.history[0]
        assert 0.73 <= record["zero_after_prune"] < 0.78  # the depth curve raises τ_l in later blocks
        if in_place:
            assert record["zero_after_revive"] == pytest.approx(record["zero_after_prune"] * 0.73, abs=0.02)
        else:
            assert record["zero_after_revive"] == record["zero_after_prune"] == zero_fraction(m)


def test_under_adam_the_seeds_pruned_weights_regrow_before_the_next_cycle_and_the_engine_holds_them():
    from resonance_lib.sparsity import SourceRuleCallback, magnitude_threshold

    m = model()
    rule = SourceRuleCallback(m, interval=20, threshold=magnitude_threshold(m, 0.73), revive_in_place=True)
    train(m, TASK, dataclasses.replace(RUN, max_iters=41), callbacks=[rule])
    first, second = rule.history[0], rule.history[1]
    assert first["zero_after_prune"] > 0.6
    assert second["zero_before"] < 0.05  # 19 Adam steps later almost every zeroed weight has moved off zero
    engine = model()
    watch = SparsityEveryStep(None)
    callback = sparsify(engine, strategy="static", target_sparsity=0.73, seed=0)
    watch.sparsifier = callback.sparsifier
    train(engine, TASK, dataclasses.replace(RUN, max_iters=41), callbacks=[callback, watch])
    assert min(sparsity for _, sparsity, _, _ in watch.seen) == pytest.approx(0.73, abs=0.01)
