"""run_grid's workers, run cache and executors: the same rows however the runs are spread, nothing retrained
that is already on disk, and the README's dask example runs."""

import dataclasses
import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from resonance_lib import experiments
from resonance_lib.data import SequenceReconstruction
from resonance_lib.experiments import GridRunError, RunSpec, Variant, matched_variants, run_grid, run_key
from resonance_lib.model import ResonanceConfig, ResonanceLM
from resonance_lib.train import TrainConfig

TASK = SequenceReconstruction(vocab_size=16, seq_len=8, mode="copy")
SMALL = ResonanceConfig(vocab_size=16, block_size=16, n_layer=1, n_head=2, n_embd=16)
CFG = TrainConfig(max_iters=4, batch_size=4, eval_interval=2, eval_iters=1, device="cpu", warmup_iters=0)
TIMING = ["tokens_per_s", "infer_tokens_per_s", "elapsed_s", "device"]


def same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns=TIMING), b.drop(columns=TIMING))


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # workers train with one thread; compare like with like
    yield
    torch.set_num_threads(before)


def test_workers_give_the_rows_of_a_serial_run_in_the_same_order(one_thread):
    variants = matched_variants(SMALL, ["delta_dv1", "sparse_static"])  # a closure callback crosses the fork
    serial = run_grid(variants, [0, 1], TASK, CFG, workers=1, progress=False)
    parallel = run_grid(variants, [0, 1], TASK, CFG, workers=2, progress=False)
    same_rows(serial, parallel)
    assert list(parallel.groupby(["variant", "seed"], sort=False).ngroup().unique()) == list(range(6))


def test_the_cache_resumes_a_grid_and_rebuilds_models_without_training(tmp_path, monkeypatch, capsys, one_thread):
    variants = matched_variants(SMALL, ["sparse_resonance"])
    first = run_grid(variants, [0], TASK, CFG, workers=1, cache_dir=tmp_path)
    trained = []
    real_train = experiments.train
    monkeypatch.setattr(experiments, "train", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    both, models = run_grid(variants, [0, 1], TASK, CFG, workers=1, cache_dir=tmp_path, return_models=True)
    assert len(trained) == 2  # seed 1 of each arm; seed 0 came from the cache
    assert "grid: 2 of 4 runs read from the cache" in capsys.readouterr().out
    same_rows(first, both[both["seed"] == 0].reset_index(drop=True))
    again, cached_models = run_grid(variants, [0, 1], TASK, CFG, workers=1, cache_dir=tmp_path, return_models=True)
    assert len(trained) == 2
    same_rows(both, again)
    for key, model in models.items():
        for (name, a), b in zip(model.state_dict().items(), cached_models[key].state_dict().values(), strict=True):
            assert torch.equal(a, b), name
    sparse = cached_models["sparse_resonance", 1]
    assert sparse.sparsifier.cycles == models["sparse_resonance", 1].sparsifier.cycles > 0


def test_a_history_only_entry_serves_a_grid_without_models_and_is_retrained_for_one(tmp_path, monkeypatch,
                                                                                     one_thread):
    """The committed results keep each run's history and leave its weights out of git (runs/*/**/state.pt)."""
    variants = [Variant("baseline", SMALL)]
    first = run_grid(variants, [0], TASK, CFG, workers=1, cache_dir=tmp_path, progress=False)
    (state,) = tmp_path.glob("*/state.pt")
    state.unlink()
    trained = []
    real_train = experiments.train
    monkeypatch.setattr(experiments, "train", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    same_rows(first, run_grid(variants, [0], TASK, CFG, workers=1, cache_dir=tmp_path, progress=False))
    assert trained == []  # the history was enough
    _, models = run_grid(variants, [0], TASK, CFG, workers=1, cache_dir=tmp_path, progress=False,
                         return_models=True)
    assert trained == [1] and ("baseline", 0) in models  # a model was asked for: trained again


def test_a_grid_asked_for_some_models_retrains_only_the_runs_whose_weights_it_returns(tmp_path, monkeypatch,
                                                                                      one_thread):
    variants = [Variant("baseline", SMALL)]
    first = run_grid(variants, [0, 1], TASK, CFG, workers=1, cache_dir=tmp_path, progress=False)
    for state in tmp_path.glob("*/state.pt"):
        state.unlink()  # histories alone, as in a fresh clone
    trained = []
    real_train = experiments.train
    monkeypatch.setattr(experiments, "train", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    runs, models = run_grid(variants, [0, 1], TASK, CFG, workers=1, cache_dir=tmp_path, progress=False,
                            return_models=[("baseline", 1)])
    assert trained == [1] and set(models) == {("baseline", 1)}  # seed 0 came from its history
    same_rows(first[first["seed"] == 0], runs[runs["seed"] == 0])
    for bad, message in (([("baseline", 7)], "which the grid does not run"), ("baseline", "must be True, False or")):
        with pytest.raises(ValueError, match=message):
            run_grid(variants, [0, 1], TASK, CFG, workers=1, cache_dir=tmp_path, progress=False, return_models=bad)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_cut_off_mid_training_resumes_from_its_last_evaluation(tmp_path, monkeypatch, one_thread, workers):
    """A cached grid's run saves a checkpoint at each evaluation (``<cache_dir>/.partial``); cut off, it goes on
    from there at the next call, ends exactly where an uninterrupted run ends, and its checkpoint is then deleted."""
    from resonance_lib import train as train_module

    cfg = dataclasses.replace(CFG, max_iters=6, eval_interval=2)
    variants = matched_variants(SMALL, ["sparse_resonance"])  # a callback with state crosses the resumption
    whole = run_grid(variants, [0], TASK, cfg, workers=1, cache_dir=tmp_path / "whole", progress=False)

    real_save = train_module.save_checkpoint

    def save_then_stop(path, state, *args):
        real_save(path, state, *args)
        if state.step == 4:
            raise RuntimeError("the session ended")

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_stop)
    with pytest.raises(GridRunError, match="the session ended"):
        run_grid(variants, [0], TASK, cfg, workers=workers, cache_dir=tmp_path / "cut", progress=False)
    partials = sorted((tmp_path / "cut" / ".partial").glob("*.pt"))
    assert len(partials) == 2 and not [p for p in (tmp_path / "cut").iterdir() if not p.name.startswith(".")]

    monkeypatch.setattr(train_module, "save_checkpoint", real_save)
    log = tmp_path / "resumed_from.txt"  # a file: forked workers write it too
    real_train = experiments.train

    def logged_train(*args, resume_from=None, **kwargs):
        with log.open("a") as f:
            f.write(f"{resume_from}\n")
        return real_train(*args, resume_from=resume_from, **kwargs)

    monkeypatch.setattr(experiments, "train", logged_train)
    again = run_grid(variants, [0], TASK, cfg, workers=workers, cache_dir=tmp_path / "cut", progress=False)
    assert sorted(log.read_text().split()) == list(map(str, partials))  # each went on from its checkpoint
    same_rows(whole, again)
    assert not list((tmp_path / "cut" / ".partial").glob("*"))  # stored, so deleted

    factory = ResonanceLM
    spec = RunSpec(Variant("baseline", SMALL), 1, TASK, cfg, factory)
    broken = experiments.partial_checkpoint_path(tmp_path / "bad", run_key(spec), spec)
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(GridRunError, match="not a valid checkpoint"):  # named, never skipped
        run_grid([spec.variant], [1], TASK, cfg, workers=1, cache_dir=tmp_path / "bad", progress=False,
                 model_factory=factory)


def test_the_cache_key_changes_with_everything_that_changes_a_result():
    base = RunSpec(Variant("baseline", SMALL), 0, TASK, CFG, lambda c: None)
    key = run_key(base, code="x")
    changed = [dataclasses.replace(base, seed=1),
               dataclasses.replace(base, variant=Variant("baseline", dataclasses.replace(SMALL, n_embd=32))),
               dataclasses.replace(base, train_config=dataclasses.replace(CFG, max_iters=5)),
               dataclasses.replace(base, train_config=dataclasses.replace(CFG, learning_rate=2e-3)),
               dataclasses.replace(base, data=SequenceReconstruction(vocab_size=16, seq_len=8, mode="copy", seed=1)),
               dataclasses.replace(base, variant=Variant("baseline", SMALL, callbacks=lambda m, c: [None]))]
    assert len({key, *(run_key(c, code="x") for c in changed)}) == len(changed) + 1
    assert run_key(base, code="y") != key  # a change to the library
    assert run_key(dataclasses.replace(base, train_config=dataclasses.replace(CFG, progress=True)), code="x") == key


def test_how_a_run_is_computed_is_not_part_of_its_key():
    """The fused, compiled or plain forms of one function and the host-sync interval change a result at rounding
    level at most (like the thread count): runs that differ only in them are the same run."""
    state = dataclasses.replace(SMALL, residual="delta", delta_value_dim=4)
    base = RunSpec(Variant("delta_dv4", state), 0, TASK, CFG, lambda c: None)
    key = run_key(base, code="x")
    for how in (dict(delta_fused=False), dict(delta_compiled=True), dict(halting_fused=False)):
        assert run_key(dataclasses.replace(base, variant=Variant("delta_dv4", dataclasses.replace(state, **how))),
                       code="x") == key, how
    assert run_key(dataclasses.replace(base, train_config=dataclasses.replace(CFG, sync_interval=7)), code="x") == key
    assert run_key(dataclasses.replace(base, variant=Variant("delta_dv4", dataclasses.replace(state, delta_value_dim=2))),
                   code="x") != key  # what is computed still is


def test_a_version_reviewed_as_equivalent_reuses_the_earlier_versions_runs(monkeypatch):
    spec = RunSpec(Variant("baseline", SMALL), 0, TASK, CFG, lambda c: None)
    monkeypatch.setitem(experiments.RESULT_EQUIVALENT_CODE, "new", ("old", ("a.json", "b.json")))
    assert experiments.results_version("new") == "old"
    assert experiments.results_version("other") == "other"  # not reviewed: its own keys
    assert run_key(spec, code=experiments.results_version("new")) == run_key(spec, code="old")
    monkeypatch.setattr(experiments, "code_version", lambda: "new")
    assert run_key(spec) == run_key(spec, code="old")  # the default key is the reviewed version's


@pytest.mark.parametrize("version", sorted(experiments.RESULT_EQUIVALENT_CODE))
def test_each_equivalence_entry_rests_on_two_fingerprints_that_agree(version):
    """An entry of RESULT_EQUIVALENT_CODE names two history fingerprints at the full profile's model size, one
    recorded by each version, and their comparison finds no arm DIFFERENT."""
    import json

    from benchmarks.history_fingerprint import compare

    earlier, (before_file, after_file) = experiments.RESULT_EQUIVALENT_CODE[version]
    root = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    before, after = (json.loads((root / name).read_text()) for name in (before_file, after_file))
    assert before["meta"]["code_version"] == earlier and after["meta"]["code_version"] == version
    assert before["meta"]["size"] == after["meta"]["size"] == "baby"
    verdicts = compare(before, after)
    assert "DIFFERENT" not in verdicts.values(), verdicts
    assert len(verdicts) >= len(experiments.SWITCHES) + 2  # every switch, the baseline and a sparse arm


def test_a_crash_in_a_worker_is_reported_with_every_other_row_and_never_cached(tmp_path):
    def crash(model, cfg):
        raise RuntimeError("a bug in a callback factory")

    with pytest.raises(GridRunError, match="a bug in a callback factory") as info:
        run_grid([Variant("baseline", SMALL), Variant("crashes", SMALL, callbacks=crash)], [0, 1], TASK, CFG,
                 workers=2, cache_dir=tmp_path, progress=False)
    rows = info.value.results
    assert set(rows.loc[rows["status"] == "failed", "variant"]) == {"crashes"}
    assert len([p for p in Path(tmp_path).iterdir() if not p.name.startswith(".")]) == 2  # the baseline's runs


def test_bad_workers_are_refused():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=re.escape(f"workers={bad!r}")):
            run_grid([Variant("baseline", SMALL)], [0], TASK, CFG, workers=bad)


def test_the_readme_dask_example_runs_on_a_local_cluster():
    pytest.importorskip("distributed")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running a grid on more machines", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(re.findall(r"```python\n(.*?)```", section, flags=re.S))
    namespace: dict = {}
    exec(compile(code, "README.md (dask)", "exec"), namespace)  # noqa: S102
    runs = namespace["runs"]
    assert sorted(set(zip(runs["variant"], runs["seed"], strict=True))) == [
        ("baseline", 0), ("baseline", 1), ("delta", 0), ("delta", 1)]
    assert (runs["status"] == "ok").all()


def test_every_library_module_is_classified_for_the_cache_key():
    """A new module must be added to TRAINING_MODULES (its edits invalidate cached runs) or to this list of
    modules that never change a training run's result."""
    analysis = {"claims", "compute", "equivalent_code", "findings", "notebooks", "plots", "profiles", "provenance",
                "report", "session", "source", "stats", "tuning"}
    library = {p.stem for p in Path(experiments.__file__).parent.glob("*.py")} - {"__init__"}
    assert library == set(experiments.TRAINING_MODULES) | analysis
    assert not set(experiments.TRAINING_MODULES) & analysis


def test_a_language_model_run_reports_whole_split_validation_and_test_numbers_on_its_last_row(tmp_path):
    from resonance_lib.data import prepare
    from resonance_lib.train import evaluate_split

    folder = tmp_path / "tinyshakespeare"
    folder.mkdir()
    (folder / "input.txt").write_text("to be or not to be, that is the question. " * 60)
    data = prepare("tinyshakespeare", "char", data_dirs=[tmp_path], download=False)
    config = ResonanceConfig(vocab_size=data.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16)
    runs, models = run_grid([Variant("baseline", config)], [0], data, CFG, workers=1, return_models=True,
                            progress=False)
    last = runs.iloc[-1]
    assert runs[["test_loss", "final_val_loss"]].iloc[:-1].isna().all().all()  # only the trained model's row
    expected = evaluate_split(models["baseline", 0], data.split("test"), CFG.batch_size)
    assert abs(last["test_loss"] - expected["loss"]) < 1e-6 and abs(last["test_acc"] - expected["acc"]) < 1e-9
    assert last["final_val_loss"] != last["test_loss"]


def test_the_whole_split_evaluation_sends_at_least_eval_tokens_per_forward(tmp_path, monkeypatch):
    from resonance_lib import experiments
    from resonance_lib.data import prepare
    from resonance_lib.model import ResonanceConfig, ResonanceLM

    folder = tmp_path / "tinyshakespeare"
    folder.mkdir()
    (folder / "input.txt").write_text("to be or not to be, that is the question. " * 200)
    data = prepare("tinyshakespeare", "char", data_dirs=[tmp_path], download=False)
    model = ResonanceLM(ResonanceConfig(vocab_size=data.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16))
    sent, evaluate = [], experiments.evaluate_split
    monkeypatch.setattr(experiments, "evaluate_split",
                        lambda m, tokens, windows, device: sent.append(windows) or evaluate(m, tokens, windows, device))
    metrics = experiments.final_metrics(model, data, 4, "cpu")
    assert sent == [experiments.EVAL_TOKENS // 16] * 2  # val and test, many windows per forward
    expected = evaluate(model, data.split("test"), 4)  # the same loss as four windows at a time, up to rounding
    assert abs(metrics["test_loss"] - expected["loss"]) < 1e-6 and metrics["test_acc"] == expected["acc"]
    sent.clear()
    experiments.final_metrics(model, data, 10**6, "cpu")
    assert sent == [10**6] * 2  # never fewer windows than the training batch


def test_the_cache_key_ignores_docstrings_and_comments_but_not_code():
    from resonance_lib.experiments import semantic_source

    original = 'def f(x):\n    """y = 2x."""\n    return 2 * x  # double\n'
    reworded = 'def f(x):\n    """y = x + x, written differently."""\n\n    # twice x\n    return 2 * x\n'
    changed = 'def f(x):\n    """y = 2x."""\n    return 3 * x  # double\n'
    only_docstring = 'def f(x):\n    """y = 2x."""\n'
    assert semantic_source(original) == semantic_source(reworded)
    assert semantic_source(original) != semantic_source(changed)
    assert semantic_source(only_docstring) != semantic_source(original)


class SubmitsToTheCompilePool(ResonanceLM):
    """A model whose forward compiles the way inductor does on a CPU: a task through ``AsyncCompile.submit``."""

    def forward(self, idx, targets=None):
        from torch._inductor.async_compile import AsyncCompile

        assert AsyncCompile.submit(lambda: 1).result(timeout=20) == 1, "the compile pool never ran the task"
        return super().forward(idx, targets)


def test_a_worker_compiles_after_the_parent_made_inductors_compile_pool(monkeypatch):
    from torch._inductor import async_compile
    from torch._inductor import config as inductor_config

    monkeypatch.setattr(inductor_config, "compile_threads", 2)  # a pool of threads, as on a machine with cores
    async_compile.AsyncCompile.pool().submit(lambda: None).result()  # the parent compiled before: its pool runs
    runs = run_grid([Variant("baseline", SMALL)], [0, 1], TASK, CFG, model_factory=SubmitsToTheCompilePool,
                    workers=2, progress=False)
    assert set(runs["status"]) == {"ok"}
