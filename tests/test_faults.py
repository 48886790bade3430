"""Faults and bad input: nothing is lost and nothing is silently wrong.

One test (or a parametrised group) per case of the reliability issue, in its order. Each reproduces the case
with a tiny model, ``ResonanceConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=16)`` on
``SequenceReconstruction(16, 8)``, for a few steps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import pickle
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from resonance_lib import data
from resonance_lib.data import CorpusNotFoundError, SequenceReconstruction, load_corpus
from resonance_lib.experiments import Variant, run_grid, sparse_callbacks, summarize
from resonance_lib.model import ResonanceConfig, ResonanceLM
from resonance_lib.sparsity import SparsityConfig, export_compressed, import_compressed, sparsify
from resonance_lib.train import (
    CheckpointError,
    NonFiniteLossError,
    TrainConfig,
    evaluate,
    save_checkpoint,
    train,
)

TINY = ResonanceConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=16)
TASK = SequenceReconstruction(16, 8)
FEW = TrainConfig(max_iters=6, batch_size=4, eval_interval=2, eval_iters=2, warmup_iters=0, device="cpu")
SHARED_INPUT = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare" / "input.txt"


def tiny(seed=0, **changes):
    torch.manual_seed(seed)
    return ResonanceLM(dataclasses.replace(TINY, **changes))


# ---------------------------------------------------------------- 1. auxiliary losses are not the loss


def test_01_halting_loss_is_cross_entropy_and_ponder_has_its_own_column():
    model = tiny(attention="halting", ponder_weight=0.5)
    x, y = TASK.get_batch("val", 4, 8, generator=torch.Generator().manual_seed(0))
    logits, loss = model(x, y)
    assert loss.item() == pytest.approx(F.cross_entropy(logits.view(-1, 16), y.view(-1)).item(), abs=1e-6)
    ponder = model.auxiliary_losses()["ponder"]
    assert ponder.item() > 0.5  # 0.5 · Σ over 2 layers of N + R ≥ 1 iteration each

    cfg = dataclasses.replace(FEW, max_iters=2)
    metrics = evaluate(model, TASK, cfg, torch.device("cpu"), "val")
    gen = torch.Generator().manual_seed(cfg.eval_seed)
    by_hand = []
    with torch.no_grad():
        for _ in range(cfg.eval_iters):
            bx, by = TASK.get_batch("val", cfg.batch_size, 8, generator=gen)
            by_hand.append(F.cross_entropy(model(bx)[0].view(-1, 16), by.view(-1)).item())
    assert metrics["loss"] == pytest.approx(sum(by_hand) / len(by_hand), abs=1e-6)
    assert metrics["ponder"] > 0.5

    history = train(model, TASK, cfg)
    assert {"val_loss", "val_ponder", "train_ponder"} <= set(history.columns)


def test_01_training_still_optimises_the_ponder_term():
    """Training minimises CE + ponder: the weight of the ponder term changes the trained weights."""
    finals = []
    for weight in (0.0, 1.0):
        model = tiny(attention="halting", ponder_weight=weight)
        train(model, TASK, dataclasses.replace(FEW, max_iters=3))
        finals.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert not torch.equal(*finals)


# ---------------------------------------------------------------- 2. every random stream follows the run's seed


def test_02_sparse_masks_differ_between_seeds_of_a_grid():
    variant = Variant("static", TINY, callbacks=sparse_callbacks({"strategy": "static"}))
    _, models = run_grid([variant], [0, 1], TASK, dataclasses.replace(FEW, max_iters=1), return_models=True)
    mask = "blocks.0.mlp.c_fc.weight_mask"
    a, b = models["static", 0].state_dict()[mask], models["static", 1].state_dict()[mask]
    assert a.float().mean().item() == pytest.approx(b.float().mean().item(), abs=0.01)  # the same sparsity ...
    assert not torch.equal(a, b)  # ... drawn from each run's own stream


def test_02_the_sparsity_stream_is_a_function_of_the_seed():
    def masks(seed):
        model = tiny(seed)
        cb = sparse_callbacks({"strategy": "set"})(model, dataclasses.replace(FEW, seed=seed))[0]
        return torch.cat([m.flatten() for m in cb.sparsifier.masks.values()])

    assert torch.equal(masks(3), masks(3))
    assert not torch.equal(masks(3), masks(4))


# ---------------------------------------------------------------- 3. a diverged run is never kept as good


def test_03_a_nan_eval_stops_the_run_and_the_checkpoint_stays_finite(tmp_path, poison_at):
    ckpt = tmp_path / "run.pt"
    cfg = dataclasses.replace(FEW, eval_interval=1, checkpoint_path=str(ckpt))
    with pytest.raises(NonFiniteLossError, match="step 3") as info:
        train(tiny(), TASK, cfg, callbacks=[poison_at(3)])
    assert str(ckpt) in str(info.value)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["step"] == 2  # the last state whose weights and losses were finite
    assert all(torch.isfinite(t).all() for t in saved["model"].values())


def test_03_a_divergence_on_the_last_step_raises(poison_at):
    with pytest.raises(NonFiniteLossError, match="step 6"):
        train(tiny(), TASK, FEW, callbacks=[poison_at(FEW.max_iters)])


# ---------------------------------------------------------------- 4. summarize reports failed seeds


def _grid_rows(values):
    return pd.DataFrame([{"variant": v, "seed": s, "step": 10, "val_loss": x}
                         for v, xs in values.items() for s, x in enumerate(xs)])


def test_04_summarize_counts_a_nan_seed_as_failed_not_as_a_seed():
    df = _grid_rows({"baseline": [1.0, 1.1, 1.2, 1.3], "arm": [0.9, 1.0, float("nan"), 1.2]})
    arm = summarize(df).set_index("variant").loc["arm"]
    assert arm["n_seeds"] == 3 and arm["n_failed"] == 1 and arm["failed_seeds"] == "2"
    assert arm["val_loss_mean"] == pytest.approx((0.9 + 1.0 + 1.2) / 3)
    assert arm["delta_mean"] == pytest.approx(((0.9 - 1.0) + (1.0 - 1.1) + (1.2 - 1.3)) / 3)
    assert "1 of 4 seeds failed" in arm["verdict"]


def test_04_a_failed_baseline_seed_is_reported_too():
    df = _grid_rows({"baseline": [1.0, float("inf"), 1.2], "arm": [0.9, 1.0, 1.1]})
    summary = summarize(df).set_index("variant")
    assert summary.loc["baseline", "n_failed"] == 1 and summary.loc["arm", "n_failed"] == 0
    assert summary.loc["arm", "n_paired"] == 2  # seed 1 has no baseline to pair with


# ---------------------------------------------------------------- 5. run_grid keeps finished runs


def test_05_run_grid_keeps_finished_runs_when_one_diverges(poison_at):
    variants = [Variant("baseline", TINY),
                Variant("diverges", TINY, callbacks=lambda model, cfg: [poison_at(3)])]
    df = run_grid(variants, [0, 1], TASK, FEW)
    finished = df[df["variant"] == "baseline"]
    assert set(finished["seed"]) == {0, 1} and (finished["status"] == "ok").all()
    failed = df[df["variant"] == "diverges"]
    assert len(failed) == 2 and (failed["status"] == "failed").all()
    assert failed["error"].str.contains("NonFiniteLossError: training loss is nan").all()
    assert failed["val_loss"].isna().all()
    summary = summarize(df).set_index("variant")
    assert summary.loc["diverges", "n_failed"] == 2 and summary.loc["diverges", "n_seeds"] == 0


def test_05_a_crash_is_raised_after_the_other_runs_with_them_attached():
    from resonance_lib.experiments import GridRunError

    def crash(model, cfg):
        raise RuntimeError("a bug in a callback factory")

    with pytest.raises(GridRunError, match="a bug in a callback factory") as info:
        run_grid([Variant("baseline", TINY), Variant("crashes", TINY, callbacks=crash)], [0], TASK, FEW)
    kept = info.value.results
    assert set(kept.loc[kept["status"] == "ok", "variant"]) == {"baseline"}


# ---------------------------------------------------------------- 6. masks travel with the model's state


def test_06_load_state_dict_carries_the_masks_to_a_sparsified_model():
    trained = tiny(0)
    train(trained, TASK, FEW, callbacks=[sparsify(trained, strategy="set", end_step=4, update_interval=2)])
    checkpoint = trained.state_dict()

    fresh = tiny(1)
    callback = sparsify(fresh, strategy="set", seed=5)  # its own, different, random masks
    fresh.load_state_dict(checkpoint)
    callback.sparsifier.apply()
    for name, tensor in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], tensor), name
    again = tiny(2)
    sparsify(again, strategy="set", seed=6)
    import_compressed(again, export_compressed(fresh))
    for name, tensor in trained.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name


# ---------------------------------------------------------------- 7. a failed notebook run never overwrites


def _notebook(path, cells):
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("fault", [KeyboardInterrupt, RuntimeError])
def test_07_an_interrupted_run_leaves_the_notebook_as_it_was(tmp_path, monkeypatch, fault):
    import papermill

    from resonance_lib.notebooks import run_notebook

    notebook = _notebook(tmp_path / "01_tiny.ipynb", ["print(X)"])
    before = notebook.read_bytes()

    def half_run(input_path, output_path, **kwargs):
        Path(output_path).write_text("{half a notebook")  # what papermill leaves when it is stopped
        raise fault("stopped")

    monkeypatch.setattr(papermill, "execute_notebook", half_run)
    if fault is KeyboardInterrupt:
        with pytest.raises(KeyboardInterrupt):
            run_notebook(notebook, "smoke", tmp_path, tmp_path / "figures", timeout=60)
    else:
        assert not run_notebook(notebook, "smoke", tmp_path, tmp_path / "figures", timeout=60).ok
    assert notebook.read_bytes() == before
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == ["01_tiny.ipynb"]  # no stray temp file


def test_07_a_failing_cell_keeps_the_notebook_and_reports_where_the_output_went(tmp_path):
    from resonance_lib.notebooks import run_notebook

    notebook = _notebook(tmp_path / "01_tiny.ipynb", ["print(X)", "raise ValueError('bad cell')"])
    before = notebook.read_bytes()
    result = run_notebook(notebook, "smoke", tmp_path, tmp_path / "figures", timeout=120)
    assert not result.ok and "bad cell" in result.error
    assert notebook.read_bytes() == before
    assert result.output != notebook and result.output.exists()  # the failed run, kept apart for reading
    ok = run_notebook(_notebook(tmp_path / "02_ok.ipynb", ["print(X)"]), "smoke", tmp_path,
                      tmp_path / "figures", timeout=120)
    assert ok.ok and ok.output == tmp_path / "02_ok.ipynb"
    assert json.loads(ok.output.read_text())["cells"][-1]["outputs"]  # replaced by the executed copy


# ---------------------------------------------------------------- 8. checkpoints never run code on load


class RunsCode:
    """Pickles into a call that writes a marker file: what a crafted checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "code ran"))


def test_08_a_crafted_checkpoint_does_not_run_code(tmp_path):
    marker, path = tmp_path / "marker", tmp_path / "evil.pt"
    torch.save({"model": RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match=f"not a valid checkpoint: {path}"):
        train(tiny(), TASK, FEW, resume_from=path)
    assert not marker.exists()


def test_08_a_crafted_compressed_export_does_not_run_code(tmp_path):
    marker, buffer = tmp_path / "marker", io.BytesIO()
    torch.save({"wte.weight": RunsCode(marker)}, buffer)
    with pytest.raises(pickle.UnpicklingError):
        import_compressed(tiny(), buffer.getvalue())
    assert not marker.exists()


def test_08_checkpoints_hold_only_plain_data(tmp_path):
    model, path = tiny(), tmp_path / "run.pt"
    train(model, TASK, dataclasses.replace(FEW, checkpoint_path=str(path)),
          callbacks=[sparsify(model, strategy="resonance", end_step=4, update_interval=2, etch_memory=True)])
    assert torch.load(path, weights_only=True)["step"] == FEW.max_iters


# ---------------------------------------------------------------- 9. checkpoints know their config


def _checkpointed(tmp_path, **train_changes):
    path = tmp_path / "run.pt"
    train(tiny(), TASK, dataclasses.replace(FEW, max_iters=4, checkpoint_path=str(path), **train_changes))
    return path


def test_09_resume_refuses_a_different_model_config(tmp_path):
    path = _checkpointed(tmp_path)
    other = tiny(n_head=4)  # every tensor has the same shape
    with pytest.raises(CheckpointError, match=r"n_head: checkpoint 2, this run 4"):
        train(other, TASK, FEW, resume_from=path)


def test_09_resume_refuses_a_different_learning_rate_but_allows_more_steps(tmp_path):
    path = _checkpointed(tmp_path, lr_decay_iters=6)
    with pytest.raises(CheckpointError, match=r"learning_rate: checkpoint 0.001, this run 0.002"):
        train(tiny(), TASK, dataclasses.replace(FEW, learning_rate=2e-3), resume_from=path)
    history = train(tiny(), TASK, FEW, resume_from=path)  # max_iters 4 → 6, same schedule
    assert history["step"].iloc[-1] == 6


@pytest.mark.parametrize("content", [b"", b"garbage that is not a checkpoint", "truncated"])
def test_09_garbage_files_are_not_valid_checkpoints(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content == "truncated":
        good = _checkpointed(tmp_path).read_bytes()
        content = good[: len(good) // 2]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"not a valid checkpoint: {path}"):
        train(tiny(), TASK, FEW, resume_from=path)


def test_09_a_checkpoint_is_never_written_from_non_finite_weights(tmp_path):
    from resonance_lib.train import TrainState

    model = tiny()
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("inf")
    state = TrainState(model, torch.optim.AdamW(model.parameters()), FEW, torch.device("cpu"))
    with pytest.raises(NonFiniteLossError, match="not finite"):
        save_checkpoint(tmp_path / "run.pt", state, torch.Generator(), [])
    assert not (tmp_path / "run.pt").exists()


# ---------------------------------------------------------------- 10. downloads are verified


def test_10_a_download_that_is_not_the_corpus_is_refused_and_not_cached(isolated, tmp_path):
    page = tmp_path / "error.html"
    page.write_text("<html><body>429 Too Many Requests</body></html>")
    with pytest.raises(CorpusNotFoundError, match=r"sha256|bytes") as info:
        load_corpus("tinyshakespeare", data_dirs=[], url=page.as_uri())
    assert "1,115,394" in str(info.value)
    assert not isolated.exists() or not any(isolated.rglob("*"))  # no file, no empty folder


@pytest.mark.skipif(not SHARED_INPUT.is_file(), reason="needs ../shared/data/tinyshakespeare")
def test_10_the_real_file_passes_verification(isolated):
    assert hashlib.sha256(SHARED_INPUT.read_bytes()).hexdigest() == data.CORPORA["tinyshakespeare"].sha256["all"]
    corpus = load_corpus("tinyshakespeare", data_dirs=[], url=SHARED_INPUT.as_uri())
    assert corpus.train.startswith("First Citizen")
    assert (isolated / "tinyshakespeare" / "input.txt").stat().st_size == 1_115_394


# ---------------------------------------------------------------- 11. bad input fails early and clearly


@pytest.mark.parametrize("primes", [(2,), (2, 3, 5)])
def test_11_prime_two_is_refused(primes):
    with pytest.raises(ValueError, match=r"primes=.*2.*allowed: primes >= 3"):
        dataclasses.replace(TINY, encoder="prime", primes=primes)


def test_11_a_vocabulary_smaller_than_the_data_is_refused_before_training():
    with pytest.raises(ValueError, match=r"vocab_size=8.*16"):
        train(tiny(vocab_size=8), TASK, FEW)


@pytest.mark.parametrize("changes", [{"revive_ratio": 1.0}, {"revive_ratio": 0.6, "wave_amplitude": 1.0},
                                     {"revive_ratio": 0.5}])
def test_11_sparsity_settings_that_cannot_hold_the_target_are_refused_in_the_config(changes):
    with pytest.raises(ValueError, match=r"revive_ratio.*1 − target_sparsity|revive_ratio.*1 - target_sparsity"):
        SparsityConfig(strategy="resonance", **changes)


def test_11_a_depth_ramp_that_cannot_be_held_is_refused_when_attached():
    with pytest.raises(ValueError, match="cannot hold"):
        sparsify(tiny(), strategy="resonance", revive_ratio=0.25, depth_gradient_exponent=2.0)


NAN = float("nan")


@pytest.mark.parametrize("make, field", [
    (lambda: dataclasses.replace(TINY, ponder_weight=NAN), "ponder_weight"),
    (lambda: TrainConfig(grad_clip=NAN), "grad_clip"),
    (lambda: TrainConfig(warmup_iters=NAN), "warmup_iters"),
    (lambda: TrainConfig(weight_decay=NAN), "weight_decay"),
    (lambda: SparsityConfig(decay_rate=NAN), "decay_rate"),
    (lambda: TrainConfig(learning_rate=1e38), "learning_rate"),
    (lambda: TrainConfig(min_lr=NAN), "min_lr"),
    (lambda: dataclasses.replace(TINY, ffn_hidden=True), "ffn_hidden"),
    (lambda: dataclasses.replace(TINY, delta_v_sigmoid="no"), "delta_v_sigmoid"),
    (lambda: dataclasses.replace(TINY, dropout=NAN), "dropout"),
    (lambda: TrainConfig(device=None), "device"),
    (lambda: TrainConfig(compile="yes"), "compile"),
])
def test_11_bad_values_name_the_field(make, field):
    with pytest.raises(ValueError, match=rf"{field}=") as info:
        make()
    assert "allowed" in str(info.value) or "must" in str(info.value)


@pytest.mark.parametrize("content, problem", [(b"", "is empty"), (b"\xff\xfe\x00binary\x80", "not UTF-8 text")])
def test_11_an_empty_or_binary_corpus_file_names_its_path(tmp_path, monkeypatch, content, problem):
    monkeypatch.delenv("RESONANCE_DATA_DIR", raising=False)
    path = tmp_path / "tinyshakespeare" / "input.txt"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(ValueError, match=problem) as info:
        load_corpus("tinyshakespeare", data_dirs=[tmp_path], download=False)
    assert str(path) in str(info.value)


def test_11_profile_cannot_be_passed_as_a_param(capsys):
    from resonance_lib.notebooks import main

    with pytest.raises(SystemExit):
        main(["--profile", "smoke", "--param", "PROFILE='gpu'", "01"])
    assert "--param PROFILE" in capsys.readouterr().err

