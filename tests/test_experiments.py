import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from resonance_lib.data import SequenceReconstruction, TokenData
from resonance_lib.experiments import Variant, run_grid, summarize
from resonance_lib.model import ResonanceConfig
from resonance_lib.profiles import SMOKE_EVAL_TOKENS, check_profile, eval_tokens, pick, shorten_eval_splits
from resonance_lib.stats import t_interval
from resonance_lib.train import TrainConfig


def test_t_interval_matches_the_textbook_formula():
    values = [1.0, 2.0, 4.0]
    mean, lo, hi = t_interval(values)
    half = stats.t.ppf(0.975, 2) * pd.Series(values).std() / 3**0.5
    assert mean == pytest.approx(7 / 3) and lo == pytest.approx(mean - half) and hi == pytest.approx(mean + half)


def test_run_grid_and_paired_summary():
    task = SequenceReconstruction(vocab_size=16, seq_len=8, mode="copy")
    small = ResonanceConfig(vocab_size=16, block_size=16, n_layer=1, n_head=2, n_embd=16)
    wide = ResonanceConfig(vocab_size=16, block_size=16, n_layer=1, n_head=2, n_embd=32)
    cfg = TrainConfig(max_iters=4, batch_size=4, eval_interval=2, eval_iters=1, device="cpu", warmup_iters=0)
    df = run_grid([Variant("baseline", small), Variant("wide", wide)], [0, 1], task, cfg)
    assert set(df["variant"]) == {"baseline", "wide"} and set(df["seed"]) == {0, 1}
    assert len(df) == 2 * 2 * 3 and {"params", "device", "commit", "infer_tokens_per_s"} <= set(df.columns)
    summary = summarize(df).set_index("variant")
    assert summary.loc["baseline", "delta_mean"] == 0.0
    final = df[df["step"] == 4].pivot(index="seed", columns="variant", values="val_loss")
    assert summary.loc["wide", "delta_mean"] == pytest.approx((final["wide"] - final["baseline"]).mean())
    assert summary.loc["wide", "params"] > summary.loc["baseline", "params"]
    with pytest.raises(ValueError, match="baseline='nope'"):
        summarize(df, baseline="nope")
    with pytest.raises(ValueError, match="unique"):
        run_grid([Variant("a", small), Variant("a", small)], [0], task, cfg)


def test_profiles():
    assert pick("quick", smoke=1, quick=2, gpu=3) == 2
    assert pick("full", smoke=1, quick=2, gpu=3, full=4) == 4
    with pytest.raises(ValueError, match="PROFILE='full' is not available here yet"):
        pick("full", smoke=1, quick=2, gpu=3)  # never silently another profile's value
    with pytest.raises(ValueError, match=r"PROFILE='laptop'.*'smoke', 'quick', 'full', 'gpu'"):
        check_profile("laptop")


def test_only_the_smoke_profile_scores_on_a_prefix_of_the_eval_splits():
    data = TokenData(torch.arange(50_000), torch.arange(20_000), tokenizer=None, test=torch.arange(10_000) + 7)
    assert [eval_tokens(p) for p in ("smoke", "quick", "full", "gpu")] == [SMOKE_EVAL_TOKENS, None, None, None]
    assert shorten_eval_splits(data, eval_tokens("full")) is data
    short = shorten_eval_splits(data, eval_tokens("smoke"))
    assert torch.equal(short.val, data.val[:SMOKE_EVAL_TOKENS]) and torch.equal(short.test, data.test[:SMOKE_EVAL_TOKENS])
    assert short.train is data.train and len(data.val) == 20_000  # training text and the original untouched
    with pytest.raises(ValueError, match="tokens=1 must be an integer >= 2"):
        shorten_eval_splits(data, 1)



def test_only_the_gpu_profile_compiles_and_the_notebooks_pass_it_on(tmp_path):
    from pathlib import Path

    from resonance_lib.session import start

    assert [start(p, device="cpu", fig_dir=tmp_path).compile for p in ("smoke", "quick", "full", "gpu")
            ] == [False, False, False, True]
    for source in sorted(Path(__file__).parents[1].glob("notebooks/0[1-4]_*.py")):
        text = source.read_text()
        assert text.count("TrainConfig(device=DEVICE,") == text.count("TrainConfig(device=DEVICE, compile=run.compile,")
def test_verdict_reads_the_interval_in_the_right_direction():
    from resonance_lib.stats import decide

    assert decide(-0.3, -0.1, 0.02) == "better"  # a loss went down beyond the margin
    assert decide(-0.3, -0.1, 0.02, lower_is_better=False) == "worse"  # an accuracy went down
    assert decide(0.1, 0.3, 0.02, lower_is_better=False) == "better"
    assert decide(-0.1, 0.2, 0.02) == "inconclusive"
    assert decide(-0.01, -0.001, 0.02) == "equivalent"  # significant, but inside the margin
    assert decide(float("nan"), float("nan"), 0.02) == "inconclusive"


def test_matched_variants_are_within_two_percent_and_switched():
    from resonance_lib.experiments import matched_variants
    from resonance_lib.model import config_params

    base = ResonanceConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    variants = matched_variants(base, ["delta_dv1", "delta_dv4"])
    assert [v.name for v in variants] == ["baseline", "delta_dv1", "delta_dv4"]
    target = config_params(base)
    for v in variants:
        assert abs(config_params(v.config) - target) <= 0.02 * target
    assert variants[2].config.residual == "delta" and variants[2].config.delta_value_dim == 4
    with pytest.raises(ValueError, match=r"unknown components \['nope'\]"):
        matched_variants(base, ["nope"])


def test_everything_switches_every_component_on_and_attaches_a_sparsifier():
    from resonance_lib.experiments import COMBINED, matched_variants
    from resonance_lib.model import ResonanceLM, config_params
    from resonance_lib.sparsity import SparsityCallback
    from resonance_lib.train import TrainConfig

    base = ResonanceConfig(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=32)
    baseline, everything = matched_variants(base, ["everything"])
    config = everything.config
    assert (config.residual, config.attention, config.encoder, config.memory, config.head, config.ffn_mask) == (
        "delta", "phase", "prime", True, "premanifest", "prime")
    assert abs(config_params(config) - config_params(base)) <= 0.02 * config_params(base)
    callbacks = everything.callbacks(ResonanceLM(config), TrainConfig(max_iters=100))
    assert len(callbacks) == 1 and isinstance(callbacks[0], SparsityCallback)
    assert callbacks[0].sparsifier.config.target_sparsity == COMBINED["everything"][1].get("target_sparsity", 0.73)
    assert list(baseline.callbacks(ResonanceLM(base), TrainConfig())) == []


def test_report_renders_tables_from_csv_and_says_what_is_missing(tmp_path):
    from resonance_lib.report import main

    figures = tmp_path / "figures"
    figures.mkdir()
    pd.DataFrame([{"variant": "sparse_gmp", "val_loss_mean": 2.5, "verdict": "inconclusive", "profile": "quick",
                   "device": "cpu", "seeds": "0 1 2", "commit": "abc"}]).to_csv(figures / "02_charlm_quick.csv",
                                                                                 index=False)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold\n<!-- results:end -->\nrest\n")
    main(["--readme", str(readme), "--fig-dir", str(figures), "--profile", "quick"])
    text = readme.read_text()
    assert "| sparse_gmp | 2.5 | inconclusive |" in text and "commit abc" in text and "\nold\n" not in text
    assert "01_charlm_summary_quick.csv` missing" in text and text.endswith("rest\n")


def test_git_commit_can_be_named_for_a_copy_without_git(monkeypatch):
    from resonance_lib.provenance import git_commit

    monkeypatch.setenv("RESONANCE_COMMIT", "abc1234")
    assert git_commit() == "abc1234"


def test_git_commit_sees_uncommitted_library_code_from_any_working_directory(tmp_path, monkeypatch):
    import subprocess

    from resonance_lib.provenance import git_commit

    checkout = tmp_path / "checkout"
    (checkout / "resonance_lib").mkdir(parents=True)
    (checkout / "notebooks").mkdir()
    (checkout / "resonance_lib" / "model.py").write_text("x = 1\n")
    (checkout / "notebooks" / "01.ipynb").write_text("{}\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=checkout, check=True)
    subprocess.run(["git", "add", "."], cwd=checkout, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=checkout, check=True)
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True, text=True,
                         check=True).stdout.strip()
    monkeypatch.delenv("RESONANCE_COMMIT", raising=False)
    monkeypatch.chdir(checkout / "notebooks")  # where a notebook's kernel runs
    (checkout / "notebooks" / "01.ipynb").write_text("{\"executed\": 1}\n")  # an executed notebook is not code
    assert git_commit(checkout) == sha
    (checkout / "resonance_lib" / "model.py").write_text("x = 2\n")
    assert git_commit(checkout) == f"{sha}+dirty"
    monkeypatch.chdir(tmp_path)  # outside any checkout: still the library's
    assert git_commit(checkout) == f"{sha}+dirty"


def test_a_classifier_grid_reports_accuracy_on_every_held_out_example():
    from functools import partial

    from resonance_lib.data import MNISTPatches
    from resonance_lib.model import PatchClassifier
    from resonance_lib.train import evaluate_examples

    images = torch.randint(0, 256, (30, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    data = MNISTPatches(images[:20].numpy(), np.arange(20) % 10, images[20:].numpy(), np.arange(10), note="t",
                        patch=7)
    vit = ResonanceConfig(vocab_size=10, block_size=16, n_layer=1, n_head=2, n_embd=8)
    cfg = TrainConfig(max_iters=2, batch_size=4, eval_interval=2, eval_iters=1, device="cpu", warmup_iters=0)
    factory = partial(PatchClassifier, patch_dim=49)
    df, models = run_grid([Variant("baseline", vit)], [0], data, cfg, model_factory=factory, return_models=True)
    last = df.iloc[-1]
    whole = evaluate_examples(models[("baseline", 0)], *data.examples("val"), batch_size=3)
    assert last["final_val_acc"] == pytest.approx(whole["acc"]) and last["final_val_loss"] == pytest.approx(
        whole["loss"])
    assert last["final_val_acc"] * 10 == pytest.approx(round(last["final_val_acc"] * 10))  # k of the 10 examples


def test_matched_variants_count_parameters_on_the_model_they_are_given():
    from functools import partial

    from resonance_lib.experiments import matched_variants, usable_params
    from resonance_lib.model import PatchClassifier, config_params

    vit = ResonanceConfig(vocab_size=10, block_size=4, n_layer=2, n_head=4, n_embd=32)
    classifier = partial(PatchClassifier, patch_dim=196)  # 14×14 patches: a large embedding the LM does not have
    small = matched_variants(vit, ["dense_small"], model=classifier)[1].config
    target = usable_params(vit, 0.73, classifier)
    assert abs(config_params(small, classifier) / target - 1) <= 0.02
    assert abs(config_params(matched_variants(vit, ["dense_small"])[1].config, classifier) / target - 1) > 0.02
