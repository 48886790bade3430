import contextlib
import dataclasses
import math
import warnings

import pandas as pd
import pytest
import torch

from resonance_lib.data import SequenceReconstruction
from resonance_lib.model import PatchClassifier, ResonanceConfig, ResonanceLM
from resonance_lib.train import (
    Callback,
    NonFiniteLossError,
    TrainConfig,
    evaluate_examples,
    lr_at,
    make_optimizer,
    train,
)

TASK = SequenceReconstruction(vocab_size=16, seq_len=8, mode="copy", seed=0)
CONFIG = ResonanceConfig(vocab_size=16, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.1)
FAST = TrainConfig(max_iters=12, batch_size=8, eval_interval=4, eval_iters=2, warmup_iters=2, device="cpu",
                   learning_rate=3e-3, min_lr=3e-4)


def fresh(seed=0):
    torch.manual_seed(seed)
    return ResonanceLM(CONFIG)


def params_of(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_history_frame_has_one_row_per_eval():
    history = train(fresh(), TASK, FAST)
    assert isinstance(history, pd.DataFrame)
    assert list(history["step"]) == [0, 4, 8, 12]
    assert {"train_loss", "val_loss", "lr", "tokens_per_s"} <= set(history.columns)
    assert history["val_loss"].iloc[-1] < history["val_loss"].iloc[0]


def test_same_seed_same_run_and_other_seed_differs():
    a, b = fresh(), fresh()
    ha, hb = train(a, TASK, FAST), train(b, TASK, FAST)
    assert torch.equal(params_of(a), params_of(b))
    assert ha["val_loss"].tolist() == hb["val_loss"].tolist()
    c = fresh()
    train(c, TASK, TrainConfig(**{**FAST.__dict__, "seed": 7}))
    assert not torch.equal(params_of(a), params_of(c))


def test_resume_from_checkpoint_continues_identically(tmp_path):
    straight = fresh()
    h_straight = train(straight, TASK, FAST)
    ckpt = tmp_path / "run.pt"
    first = fresh()
    train(first, TASK, TrainConfig(**{**FAST.__dict__, "max_iters": 8, "lr_decay_iters": 12,
                                      "checkpoint_path": str(ckpt)}))
    resumed = fresh(seed=99)  # different init: everything must come from the checkpoint
    h_resumed = train(resumed, TASK, TrainConfig(**FAST.__dict__), resume_from=ckpt)
    assert torch.equal(params_of(straight), params_of(resumed))
    assert h_resumed["step"].tolist() == [0, 4, 8, 12]
    assert h_resumed["val_loss"].tolist() == h_straight["val_loss"].tolist()


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, poison_at):
    ckpt = tmp_path / "run.pt"
    cfg = TrainConfig(**{**FAST.__dict__, "checkpoint_path": str(ckpt)})
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 6.*kept at") as info:
        train(fresh(), TASK, cfg, callbacks=[poison_at(6)])
    assert str(ckpt) in str(info.value)
    saved = torch.load(ckpt, weights_only=False)
    assert saved["step"] == 4  # the eval at step 4 was the last good state
    assert all(torch.isfinite(t).all() for t in saved["model"].values())


def test_non_finite_without_checkpoint_says_so(poison_at):
    with pytest.raises(NonFiniteLossError, match="No checkpoint was kept"):
        train(fresh(), TASK, FAST, callbacks=[poison_at(1)])


def test_callbacks_are_called_and_can_add_metrics():
    class Count(Callback):
        def __init__(self):
            self.steps, self.backwards = 0, 0

        def on_after_backward(self, state):
            assert any(p.grad is not None for p in state.model.parameters())
            self.backwards += 1

        def on_step_end(self, state):
            self.steps += 1

        def on_eval(self, state, metrics):
            metrics["steps_seen"] = self.steps

    cb = Count()
    history = train(fresh(), TASK, FAST, callbacks=[cb])
    assert cb.steps == cb.backwards == 12
    assert history["steps_seen"].tolist() == [0, 4, 8, 12]


def test_lr_schedule_warmup_then_cosine_to_min():
    cfg = TrainConfig(max_iters=100, warmup_iters=10, learning_rate=1.0, min_lr=0.1)
    assert lr_at(0, cfg) < lr_at(9, cfg) < 1.0
    assert math.isclose(lr_at(10, cfg), 1.0)
    assert math.isclose(lr_at(55, cfg), 0.55)
    assert math.isclose(lr_at(100, cfg), 0.1)


def test_optimizer_groups_skip_norms_biases_and_embeddings():
    model = ResonanceLM(ResonanceConfig(vocab_size=16, block_size=16, n_layer=1, n_head=2, n_embd=8, bias=True))
    decay, plain = make_optimizer(model, FAST, torch.device("cpu")).param_groups
    decayed = {id(p) for p in decay["params"]}
    assert id(model.wte.weight) not in decayed and id(model.wpe.weight) not in decayed
    assert id(model.blocks[0].attn.c_attn.weight) in decayed
    assert id(model.blocks[0].attn.c_attn.bias) not in decayed
    assert plain["weight_decay"] == 0.0


@pytest.mark.parametrize(
    "field, value, pattern",
    [("max_iters", 0, "max_iters=0"), ("device", "tpu", "device='tpu'"), ("grad_clip", -1.0, "grad_clip=-1.0"),
     ("learning_rate", 0.0, "learning_rate=0.0")],
)
def test_bad_train_config(field, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        TrainConfig(**{field: value})


def test_evaluate_split_scores_every_position_of_the_stream_once():
    import torch.nn.functional as F

    from resonance_lib.model import ResonanceConfig, ResonanceLM
    from resonance_lib.train import evaluate_split

    torch.manual_seed(0)
    model = ResonanceLM(ResonanceConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)).eval()
    tokens = torch.randint(11, (8 * 5 + 4,))  # five full windows and a shorter last one
    result = evaluate_split(model, tokens, batch_size=2)
    total, count = 0.0, 0
    for start in range(0, len(tokens) - 1, 8):  # the plain form, window by window
        x = tokens[start:min(start + 8, len(tokens) - 1)][None]
        y = tokens[start + 1:start + 1 + x.shape[1]][None]
        logits, _ = model(x, y)
        total += F.cross_entropy(logits[0], y[0], reduction="sum").item()
        count += y.numel()
    assert count == len(tokens) - 1
    assert abs(result["loss"] - total / count) < 1e-5 and 0 <= result["acc"] <= 1


def test_evaluate_examples_scores_every_example_once_whatever_the_batch_size():
    torch.manual_seed(0)
    model = PatchClassifier(ResonanceConfig(vocab_size=10, block_size=4, n_layer=1, n_head=2, n_embd=8), patch_dim=3)
    x, y = torch.randn(7, 4, 3), torch.randint(10, (7,))
    logits, _ = model(x)
    expected_loss = torch.nn.functional.cross_entropy(logits, y).item()
    expected_acc = (logits.argmax(-1) == y).float().mean().item()
    for batch_size in (1, 3, 7, 100):  # 3: the last batch is shorter
        result = evaluate_examples(model, x, y, batch_size)
        assert result["loss"] == pytest.approx(expected_loss, rel=1e-5)
        assert result["acc"] == pytest.approx(expected_acc)


def test_losses_are_read_back_every_sync_interval_and_a_nan_is_still_caught_at_its_step(poison_at):
    class StepCounter(Callback):
        steps = 0

        def on_step_end(self, state):
            StepCounter.steps += 1

    every = train(fresh(), TASK, FAST)
    batched = train(fresh(), TASK, dataclasses.replace(FAST, sync_interval=3))
    for column in ("train_loss_running", "val_loss"):  # the same steps, their losses read back later
        pd.testing.assert_series_equal(batched[column], every[column])
    # poisoned after 4 optimizer steps, the forward of step 4 (counted from 0) is the first non-finite loss; with a
    # sync every 3 steps it is read back after the 6th step (a sync every step would stop after the 5th), and the
    # error names step 4
    with pytest.raises(NonFiniteLossError, match="training loss is nan at step 4") as info:
        train(fresh(), TASK, dataclasses.replace(FAST, sync_interval=3, eval_interval=12),
              callbacks=[poison_at(4), StepCounter()])
    assert info.value.step == 4 and StepCounter.steps == 6
    with pytest.raises(ValueError, match="sync_interval=0 must be a positive integer"):
        TrainConfig(sync_interval=0)


def test_mixed_precision_is_bf16_where_supported_else_fp16_with_a_grad_scaler(monkeypatch):
    from resonance_lib.train import mixed_precision

    autocast, scaler = mixed_precision(FAST, torch.device("cpu"))
    assert scaler is None and autocast is contextlib.nullcontext  # full precision off CUDA
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # this CPU build warns that CUDA is absent
        autocast, scaler = mixed_precision(FAST, cuda)
        assert scaler is None and autocast().fast_dtype == torch.bfloat16
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
        autocast, scaler = mixed_precision(FAST, cuda)
        assert isinstance(scaler, torch.amp.GradScaler) and autocast().fast_dtype == torch.float16
        assert mixed_precision(dataclasses.replace(FAST, autocast=False), cuda) == (contextlib.nullcontext, None)


def test_evaluate_runs_the_batches_through_the_forward_it_is_given():
    from resonance_lib.train import evaluate

    model, calls = fresh(), []

    def counting(x, y):
        calls.append(1)
        return model(x, y)

    assert evaluate(model, TASK, FAST, torch.device("cpu"), forward=counting) == evaluate(model, TASK, FAST,
                                                                                          torch.device("cpu"))
    assert len(calls) == FAST.eval_iters
