# %% [markdown] tags=[]
# # 05 — Full training and ablations
#
# Every resonance component is a switch on one model, and here each switch is trained against the same
# baseline: same data, same steps, same batches, parameter counts matched within ±2%, several seeds, mean
# and 95% interval. The notebook has two parts.
#
# 1. **The baseline itself.** Nothing later means anything unless the baseline is a real one, so we first
#    check ours against nanoGPT's published numbers.
# 2. **The ablation.** On characters and on words: the baseline; each component alone — the delta residual
#    ($d_v = 1$ and $4$, notebook 01), resonance prune/revive sparsity at 73% (notebook 02), phase-coded
#    attention with random and phonetic phases (notebook 03), the prime encoder, halting attention, the
#    resonance memory, the pre-manifest head and the prime FFN mask (notebook 04) — and everything together.
#    Outputs: one tidy CSV of every run, a summary table, a forest plot, loss curves and a cost-vs-quality plot.
#
# **The claim of part 1.** Our `ResonanceLM` with every switch off is a nanoGPT-grade decoder:
# on tinyshakespeare (characters) it matches the two published nanoGPT runs
# ([karpathy/nanoGPT README](https://github.com/karpathy/nanoGPT), `config/train_shakespeare_char.py`):
#
# | setting | size | published val loss |
# |---|---|---|
# | CPU "baby" GPT | 4 layers, 4 heads, 128 wide, block 64, batch 12, 2000 iters, lr 1e-3, dropout 0 | 1.88 |
# | GPU shakespeare_char | 6 layers, 6 heads, 384 wide, block 256, batch 64, 5000 iters, dropout 0.2 | 1.4697 (A100, best val) |
#
# The `quick` and `full` profiles run the first, the `gpu` profile the second; `smoke` only proves every cell runs.

# %% tags=[]
# Colab set-up: in Google Colab, clone the repository and install resonance_lib; elsewhere this does nothing.
import sys

if "google.colab" in sys.modules:
    import pathlib
    import subprocess

    REPO_URL = "https://github.com/resonance-notebooks/resonance-notebooks"
    CLONE = pathlib.Path("/content") / REPO_URL.rstrip("/").split("/")[-1]
    if not CLONE.exists():
        subprocess.run(["git", "clone", "-q", REPO_URL, str(CLONE)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--root-user-action=ignore", "-e", str(CLONE)],
                   check=True)
    sys.path.insert(0, str(CLONE))

# %% tags=["parameters"]
PROFILE = "quick"  # "smoke" (CI: a minute or two) | "quick" (a laptop: minutes; exploratory) | "full" (the committed results: hours on CPU) | "gpu"
SEEDS = None  # None: the profile's seeds
DEVICE = "auto"  # "auto" | "cpu" | "cuda"
FIG_DIR = None  # None: the repository's figures/ (wherever the notebook runs from)
DATA_DIR = None  # a directory holding <corpus>/<file>; None: RESONANCE_DATA_DIR, then data/, then download
SECTIONS = None  # None: all of "nanogpt", "char", "word"; a subset splits a long run over several sessions;
# [] trains nothing and rebuilds the tables and figures from the runs files already in FIG_DIR

# %% tags=[]
import dataclasses
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from resonance_lib.claims import measure, record_claims
from resonance_lib.data import prepare
from resonance_lib.compute import equal_compute_variants, flops_per_token, measure_throughput
from resonance_lib.experiments import (
    Variant,
    matched_variants,
    paired_differences,
    run_grid,
    summarize,
)
from resonance_lib.findings import what_we_found
from resonance_lib.model import Block, ResonanceConfig, ResonanceLM, build_block, config_params
from resonance_lib.plots import Stamp, arm_palette, cost_quality, forest, loss_curves, read_table, save_figure, save_table
from resonance_lib.profiles import eval_tokens, pick, shorten_eval_splits
from resonance_lib.session import start
from resonance_lib.source import show_source
from resonance_lib.stats import compare, holm, t_interval
from resonance_lib.train import TrainConfig
from resonance_lib.tuning import tune_learning_rates, tuning_plan, with_learning_rates

ALL_SECTIONS = ("nanogpt", "char", "word")
sections = ALL_SECTIONS if SECTIONS is None else tuple(SECTIONS)
if not set(sections) <= set(ALL_SECTIONS):
    raise ValueError(f"SECTIONS={SECTIONS!r}: allowed values are {list(ALL_SECTIONS)} (or None for all)")
run = start(PROFILE, SEEDS or pick(PROFILE, smoke=[0, 1], quick=[0, 1, 2], gpu=[0, 1, 2], full=[0, 1, 2, 3, 4, 5]),
            DEVICE, FIG_DIR, DATA_DIR)
seeds, stamp, FIG_DIR, data_dirs = list(run.seeds), run.stamp, run.fig_dir, run.data_dirs
print("sections:", sections)

# %% tags=[]
# Part 1 reproduces nanoGPT on its own split (train: the first 90%, validation: the last 10%). The ablation holds
# out the 5% just before the validation text as a test split, read once for the reported numbers, so it trains
# on the first 85%. The smoke profile scores on the first 8,192 validation and test tokens (`eval_tokens`), every other
# profile on the whole splits.
nanogpt_data = shorten_eval_splits(prepare("tinyshakespeare", "char", data_dirs=data_dirs, test_fraction=0.0),
                                   eval_tokens(PROFILE))
data = shorten_eval_splits(prepare("tinyshakespeare", "char", data_dirs=data_dirs), eval_tokens(PROFILE))
for name, d in (("part 1 (nanoGPT's split)", nanogpt_data), ("ablation", data)):
    print(f"{name}: vocab {d.vocab_size}, train {len(d.train):,}, test {len(d.test):,}, val {len(d.val):,} tokens")

# %% tags=[]
model_size = pick(
    PROFILE,
    smoke=dict(n_layer=2, n_head=2, n_embd=32, block_size=32, dropout=0.0),
    quick=dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0),
    full=dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0),
    gpu=dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2),
)
train_cfg = TrainConfig(
    device=DEVICE,
    **pick(
        PROFILE,
        smoke=dict(max_iters=30, batch_size=8, eval_interval=15, eval_iters=2, warmup_iters=5),
        quick=dict(max_iters=2000, batch_size=12, eval_interval=500, eval_iters=100),
        full=dict(max_iters=2000, batch_size=12, eval_interval=500, eval_iters=100),
        gpu=dict(max_iters=5000, batch_size=64, eval_interval=500, eval_iters=100),
    ),
)
published = pick(PROFILE, smoke=("CPU baby GPT (a larger model)", 1.88), quick=("CPU baby GPT", 1.88),
                 full=("CPU baby GPT", 1.88), gpu=("GPU shakespeare_char", 1.4697))
baseline = ResonanceConfig(vocab_size=data.vocab_size, **model_size)
print(baseline)
print(f"{config_params(baseline):,} parameters")

# %% [markdown] tags=[]
# ## Part 1: the baseline against nanoGPT
#
# One run per seed, on nanoGPT's own split (the ablation below trains on 5% less text: it holds a test split
# out). A seed fixes both the initialisation and the order of training batches; every run is evaluated on the
# same 100 validation batches, so runs are comparable. (nanoGPT's CPU run used 20
# batches; at this size 20 batches move the estimate by about ±0.01 from one draw to the next.) Skipped
# when `SECTIONS` leaves out `"nanogpt"`.

# %% tags=[]
if "nanogpt" in sections:
    # quick: two seeds of the 2000-step reproduction (it is the notebook's costliest part at that profile)
    nanogpt_seeds = pick(PROFILE, smoke=seeds, quick=seeds[:2], full=seeds, gpu=seeds)
    runs = run_grid([Variant("baseline", baseline)], nanogpt_seeds, nanogpt_data, train_cfg, cache_dir=run.cache_dir)
    fig = loss_curves(runs)
    for ax in fig.axes:
        ax.set_xlabel("training step")
    # the per-eval rows of every seed, saved beside the figure: the verdict below is computed from this file
    save_figure(fig, runs, f"05_baseline_loss_{PROFILE}", FIG_DIR, stamp,
                title=f"baseline on tinyshakespeare (char), {config_params(baseline):,} parameters")

# %% [markdown] tags=[]
# ## Verdict: is our baseline nanoGPT-grade?
#
# nanoGPT reports the **best** validation loss of a run (its shakespeare_char config keeps the checkpoint only
# when the validation loss improves, expecting the 10M model to overfit this 1M-character text), so we
# compare the best evaluation of each seed: mean and 95% t-interval beside the published single run. The
# baseline reproduces it if the published number is inside our interval or above it. The table is built
# from the saved runs file, so it can be rebuilt without training (`SECTIONS=[]`); its stamp names the
# device and commit the runs came from.

# %% tags=[]
baseline_runs_file = Path(FIG_DIR) / f"05_baseline_loss_{PROFILE}.csv"
if baseline_runs_file.exists():
    runs = read_table(baseline_runs_file)
    runs_stamp = Stamp(PROFILE, ", ".join(sorted(set(runs["device"]))), tuple(sorted(set(runs["seed"]))),
                       ", ".join(sorted(set(runs["commit"]))))
    best = runs.groupby("seed")["val_loss"].min()
    final = runs[runs["step"] == runs["step"].max()]
    mean, low, high = t_interval(best)
    table = pd.DataFrame([{"variant": "baseline", "n_seeds": len(best), "best_val_loss_mean": mean, "ci_low": low,
                           "ci_high": high, "final_val_loss_mean": final["val_loss"].mean(),
                           "params": runs["params"].iloc[0], "tokens_per_s": runs["tokens_per_s"].mean(),
                           "published_setting": published[0], "published_val_loss": published[1]}])
    save_table(table, f"05_baseline_vs_nanogpt_{PROFILE}", FIG_DIR, runs_stamp)
    verdict = "matches or beats" if min(mean, low) <= published[1] else "falls short of"
    print(f"Our baseline ({runs_stamp}): best val loss {mean:.4f} [{low:.4f}, {high:.4f}] "
          f"(final {table['final_val_loss_mean'].iloc[0]:.4f}) — it {verdict} nanoGPT's published "
          f"{published[1]} ({published[0]}), at {table['tokens_per_s'].iloc[0]:,.0f} training tokens/s.")
else:
    print(f"{baseline_runs_file.name} not in {FIG_DIR}: run the notebook with the nanogpt section first")

# %% [markdown] tags=[]
# ## Part 2: the ablation, under the protocol
#
# **Arms.** One grid per text level:
#
# - `baseline` — the model above, every switch off;
# - each component alone, made by `matched_variants`: the config switch from `SWITCHES`, then the FFN
#   width adjusted by `match_params` until the usable parameter count is within ±2% of the baseline's (the
#   sparse arm keeps the baseline's architecture and adds the prune/revive sparsifier, so its *dense*
#   count matches; 73% of its prunable weights are zero by the end);
# - `everything` — every component at once (`COMBINED["everything"]`): delta residual ($d_v = 1$), phase
#   attention, prime encoder, memory, pre-manifest head, prime FFN mask and resonance sparsity (halting
#   attention is the other value of the attention switch, so it is not in it; phases start random);
# - **controls**: `write_dv1`/`write_dv4`, the delta residual without its erase term ($X + \beta k v^\top$),
#   which isolates what erasing adds; `dense_small`, a dense model with as many usable weights as the
#   73%-sparse arm has nonzero ones (narrower layers: the one arm whose width changes).
#
# Phonetic phases need words to rhyme, so `phase_phonetic` runs only on the word level.
#
# **Protocol.** (1) Every arm, baseline included, gets the same learning-rate sweep (multiples of the
# baseline's rate) on tuning seeds at the full run length; its best rate is then used on fresh evaluation
# seeds; an arm whose best rate is the largest or smallest it tried also tries the next rate out, up to twice, so that no arm is left at the edge of the grid; each arm's two best rates then train on two more tuning seeds and the lowest mean over the three wins, because one seed's loss varies about as much as neighbouring rates differ. (2) The training throughput of every arm is timed interleaved in one process, and its FLOPs per
# token counted. (3) Every arm trains the same steps on the evaluation seeds (*equal steps*); (4) every arm
# below 0.8× the baseline's throughput also trains the steps that fit in the baseline's time, with its own full
# schedule (*equal compute*, named `<arm>@compute`). In the `quick` profile the sweep is cut to one
# rate (`smoke` tries two) and the runs are short: those results are exploratory. How one switch reaches the model —
# `build_block` takes each part from the registry by the config's names, and `Block` only calls the parts it
# was given, $x \leftarrow r_1(x, \text{attn}(\text{LN}(h)))$, $x \leftarrow r_2(x, \text{MLP}(\text{LN}(h)))$
# with $r$ the residual rule and $h$ what the state reader returns:

# %% tags=[]
show_source(build_block, "return Block(", "bias=config.bias)")
show_source(Block.forward);

# %% tags=[]
# the ablation's model: part 1's, except in `quick`, where it is smaller (2 layers, 64 wide, 32 tokens of context) so that all five notebooks fit
# in about 30 minutes of a laptop
ablation_size = pick(PROFILE, smoke=model_size, quick=dict(model_size, n_layer=2, n_embd=64, block_size=32), full=model_size, gpu=model_size)
components = ["delta_dv1", "delta_dv4", "sparse_resonance", "phase_random", "phase_phonetic", "prime_encoder",
              "halting_attention", "memory", "premanifest_head", "prime_ffn_mask", "everything"]
controls = ["write_dv1", "write_dv4", "dense_small"]
ablation_cfg = TrainConfig(device=DEVICE, **pick(
    PROFILE, smoke=dict(max_iters=20, batch_size=8, eval_interval=10, eval_iters=2, warmup_iters=5),
    quick=dict(max_iters=100, batch_size=12, eval_interval=50, eval_iters=10, warmup_iters=10),
    full=dict(max_iters=2000, batch_size=12, eval_interval=500, eval_iters=100),
    gpu=dict(max_iters=250, batch_size=32, eval_interval=125, eval_iters=20, warmup_iters=25)))
# the protocol's tuning budget (tuning_plan), as in notebooks 01–04 but with a fourth rate: ×0.5, 1, 2, 4 on tuning
# seed 100, extended past an edge up to twice, each arm's two best rates confirmed on seeds 101 and 102
plan = tuning_plan(PROFILE, full_multipliers=(0.5, 1.0, 2.0, 4.0))
sweep_stamp = dataclasses.replace(stamp, seeds=tuple(plan.seeds))  # the sweep's tables name the seeds it ran on
timing = pick(PROFILE, smoke=dict(steps=4, warmup=2, repeats=1), quick=dict(steps=10, warmup=3, repeats=3),
              full=dict(steps=20, warmup=5, repeats=3), gpu=dict(steps=20, warmup=5, repeats=3))
word_vocab = pick(PROFILE, smoke=500, quick=1000, full=2000, gpu=8000)


def ablate(level):
    corpus = data if level == "char" else shorten_eval_splits(
        prepare("tinyshakespeare", "word", max_vocab=word_vocab, data_dirs=data_dirs), eval_tokens(PROFILE))
    names = [c for c in components + controls if not (level == "char" and c == "phase_phonetic")]
    base = ResonanceConfig(vocab_size=corpus.vocab_size, **ablation_size)
    variants = matched_variants(base, names)
    if len(plan.multipliers) > 1:  # (1) the same sweep for every arm
        sweep, chosen = tune_learning_rates(variants, list(plan.tuning_seeds), corpus, ablation_cfg, plan.multipliers,
                                            extend_edges=plan.extend_edges, confirm_seeds=list(plan.confirm_seeds),
                                            cache_dir=run.cache_dir)
    else:
        sweep, chosen = pd.DataFrame(), {v.name: ablation_cfg.learning_rate for v in variants}
    tuned = with_learning_rates(variants, chosen, ablation_cfg)
    # (2) interleaved, one thread; kept in the run cache, so a run resumed later reuses the same ratios
    speed = measure_throughput(tuned, corpus, ablation_cfg, **timing, cache_dir=run.cache_dir)
    vocab = getattr(corpus.tokenizer, "itos", None)
    costs = speed.groupby("variant", sort=False).agg(tokens_per_s=("tokens_per_s", "median"),
                                                     throughput_ratio=("ratio", "first")).reset_index()
    costs["flops_per_token"] = [flops_per_token(ResonanceLM(v.config, vocab=vocab), corpus, ablation_cfg.batch_size)
                                for v in tuned]
    costs["learning_rate"] = costs["variant"].map(chosen)
    costs["usable_params"] = [config_params(v.config) for v in tuned]
    ratios = dict(zip(costs["variant"], costs["throughput_ratio"], strict=True))
    arms = tuned + equal_compute_variants(tuned, ratios, ablation_cfg.max_iters)  # (3) and (4)
    runs = run_grid(arms, seeds, corpus, ablation_cfg, cache_dir=run.cache_dir).assign(level=level)
    save_table(runs, f"05_runs_{level}_{PROFILE}", FIG_DIR, stamp)
    save_table(costs.assign(level=level), f"05_costs_{level}_{PROFILE}", FIG_DIR, stamp)
    save_table(sweep.assign(level=level), f"05_lr_sweep_{level}_{PROFILE}", FIG_DIR, sweep_stamp)
    # (5) sensitivity: the baseline also at its runner-up rate (confirmed rates first), on the evaluation seeds
    others = sweep[(sweep["variant"] == "baseline") & ~sweep["chosen"]] if len(sweep) else sweep
    if len(others):
        runner_up = others.sort_values(["confirmed", "final_val_loss_mean"], ascending=[False, True]).iloc[0]
        alternative = dataclasses.replace(with_learning_rates(variants[:1], {"baseline": runner_up["learning_rate"]},
                                                              ablation_cfg)[0], name="baseline@runner-up")
        alternative_runs = run_grid([alternative], seeds, corpus, ablation_cfg, cache_dir=run.cache_dir)
        save_table(alternative_runs.assign(level=level, learning_rate=runner_up["learning_rate"]),
                   f"05_baseline_runner_up_{level}_{PROFILE}", FIG_DIR, stamp)
    return runs


for level in ("char", "word"):
    if level in sections:
        ablate(level)

# %% [markdown] tags=[]
# ### Every run, one tidy table
#
# One row per (level, variant, seed, eval step), with the trainer's metrics, parameters, non-zero
# parameters, training and inference tokens/s, device and commit. It is read back from the per-level files,
# so a run split over sessions with `SECTIONS` is joined here the same way.

# %% tags=[]
parts = {level: Path(FIG_DIR) / f"05_runs_{level}_{PROFILE}.csv" for level in ("char", "word")}
levels = [level for level, path in parts.items() if path.exists()]
if not levels:
    raise FileNotFoundError(f"no 05_runs_<level>_{PROFILE}.csv in {FIG_DIR}: run the char or word section first")
if len(levels) < 2:
    print(f"only the {levels} level has run so far; run SECTIONS={[l for l in parts if l not in levels]} to complete")
all_runs = pd.concat([read_table(parts[level]) for level in levels], ignore_index=True)
all_runs.to_csv(Path(FIG_DIR) / f"05_all_runs_{PROFILE}.csv", index=False)
# tables and figures below are stamped with the device and commit the runs came from
stamp = Stamp(PROFILE, ", ".join(sorted(set(all_runs["device"]))), tuple(sorted(set(all_runs["seed"]))),
              ", ".join(sorted(set(all_runs["commit"]))))
print(f"{len(all_runs):,} rows: {all_runs.groupby(['level', 'variant', 'seed']).ngroups} runs "
      f"on {sorted(set(all_runs['device']))} at commit {sorted(set(all_runs['commit']))}")
all_runs.head()

# %% [markdown] tags=[]
# ### Summary: mean ± 95% interval, and the paired difference to the baseline
#
# `summarize` takes each run's final validation loss; the difference to the baseline is paired by seed
# (same initialisation stream, same batches) and its 95% t-interval decides the verdict. Training throughput is
# the protocol's interleaved measurement (median tokens/s of each arm, timed in turn in one process, and its ratio
# to the baseline): the runs' own tokens/s also count whatever else the machine ran beside them. Inference
# tokens/s is a forward pass on a validation batch in eval mode.

# %% tags=[]
summary = pd.concat([summarize(all_runs[all_runs["level"] == level]).assign(level=level)
                     for level in levels], ignore_index=True)
baseline_infer = summary[summary["variant"] == "baseline"].set_index("level")["infer_tokens_per_s"]
summary["infer_vs_baseline"] = summary["infer_tokens_per_s"] / summary["level"].map(baseline_infer)
costs = pd.concat([read_table(FIG_DIR / f"05_costs_{level}_{PROFILE}.csv") for level in levels]).set_index(["level", "variant"])
timed = list(zip(summary["level"], summary["variant"].str.removesuffix("@compute"), strict=True))  # a copy costs as its arm
summary["tokens_per_s"] = [costs.loc[key, "tokens_per_s"] for key in timed]
summary["throughput_vs_baseline"] = [costs.loc[key, "throughput_ratio"] for key in timed]
save_table(summary, f"05_summary_{PROFILE}", FIG_DIR, stamp)
summary[["level", "variant", "params", "val_loss_mean", "ci_low", "ci_high", "delta_mean", "delta_ci_low", "delta_ci_high",
         "verdict", "tokens_per_s", "throughput_vs_baseline", "infer_tokens_per_s", "infer_vs_baseline"]].round(4)

# %% [markdown] tags=[]
# ### Every comparison under the protocol's rule
#
# The summary's intervals are per arm. For the verdicts, each level's comparisons form one family: every arm
# against the baseline at equal steps, every slow arm's `@compute` copy against the baseline at equal compute,
# and the controls (each delta residual against its write-only control, the sparse arm against the small dense
# model). Simultaneous 95% intervals (Bonferroni over the family), Holm-adjusted p-values, and the rule with
# the 0.02-nat margin — *better* / *worse* when the interval lies beyond ∓0.02, *equivalent* inside ±0.02,
# else *inconclusive*. The metric is the final model's cross-entropy on the whole held-out test split (the 5%
# of tinyshakespeare before nanoGPT's validation 10%, read only here); the learning rates were chosen on the
# whole validation split. Cost columns come from the interleaved timing and the FLOP count of part 2.
# `seeds_lower` counts the seeds on which the arm's loss is below its reference's: an interval widened by one
# outlying seed (an arm that trains well on most seeds and badly on one) shows there as 5 of 6.

# %% tags=[]
costs = pd.concat([read_table(Path(FIG_DIR) / f"05_costs_{level}_{PROFILE}.csv") for level in levels],
                  ignore_index=True)
control_pairs = [("delta_dv1", "write_dv1"), ("delta_dv4", "write_dv4"), ("sparse_resonance", "dense_small")]
arms = []
for level in levels:
    level_runs = all_runs[all_runs["level"] == level]
    present = set(level_runs["variant"])
    pairs = [(name, "baseline") for name in level_runs["variant"].unique() if name != "baseline"]
    pairs += [(arm, ref) for arm, ref in control_pairs if {arm, ref} <= present]
    for name, reference in pairs:
        differences, n_failed = paired_differences(level_runs, name, reference)
        arms.append({"level": level, "variant": name, "reference": reference,
                     "arm": name.removesuffix("@compute"),
                     "comparison": "equal_compute" if name.endswith("@compute") else "equal_steps",
                     "n_failed": n_failed, "seeds_lower": sum(d < 0 for d in differences),
                     **compare(differences, margin=0.02, family_size=len(pairs))})
arms = pd.DataFrame(arms)
arms["p_holm"] = arms.groupby("level")["p_value"].transform(
    lambda p: pd.Series(holm(p.fillna(1.0).tolist()), index=p.index))
arms = arms.merge(costs[["level", "variant", "learning_rate", "throughput_ratio", "flops_per_token"]].rename(
    columns={"variant": "arm"}), on=["level", "arm"], how="left")
save_table(arms, f"05_arms_{PROFILE}", FIG_DIR, stamp)
arms[["level", "variant", "reference", "comparison", "n_seeds", "seeds_lower", "estimate", "ci_low", "ci_high", "p_holm",
      "verdict", "learning_rate", "throughput_ratio", "flops_per_token"]].round(4)

# %% [markdown] tags=[]
# ### Sensitivity: would a verdict change with the baseline at its other rate?
#
# Every comparison above is against one baseline, trained at the rate its sweep chose. That choice is made on
# three tuning seeds, and neighbouring rates differ by about as much as one seed's loss varies, so the chosen
# rate may not be the better one on the evaluation seeds. The baseline was therefore also trained at its
# runner-up rate (the other confirmed rate of its sweep) on the same evaluation seeds, and every comparison with
# the baseline is repeated against it, with the same family size and margin. A verdict that differs between the
# two columns depends on which of two near-equal rates the baseline was given: read it as fragile. (Only the
# baseline gets this check; each arm's own rate carries the same selection noise, in its own disfavour.)

# %% tags=[]
runner_up_files = {level: Path(FIG_DIR) / f"05_baseline_runner_up_{level}_{PROFILE}.csv" for level in levels}
sensitivity = []
for level in (level for level in levels if runner_up_files[level].exists()):
    alternative_runs = read_table(runner_up_files[level])
    level_runs = pd.concat([all_runs[all_runs["level"] == level], alternative_runs], ignore_index=True)
    family = arms[arms["level"] == level]
    differences, _ = paired_differences(level_runs, "baseline@runner-up", "baseline")
    shift = compare(differences, margin=0.02)  # the baseline at its runner-up rate − at its chosen rate
    rates = {"chosen_lr": costs.loc[(costs["level"] == level) & (costs["variant"] == "baseline"), "learning_rate"].iloc[0],
             "runner_up_lr": alternative_runs["learning_rate"].iloc[0]}
    print(f"{level} level: the baseline at its runner-up rate {rates['runner_up_lr']:g} − at its chosen rate "
          f"{rates['chosen_lr']:g}, test loss on the evaluation seeds: {shift['estimate']:+.4f} "
          f"[{shift['ci_low']:+.4f}, {shift['ci_high']:+.4f}] (at the 0.02 margin: {shift['verdict']})")
    for row in family[family["reference"] == "baseline"].itertuples():
        differences, _ = paired_differences(level_runs, row.variant, "baseline@runner-up")
        against = compare(differences, margin=0.02, family_size=len(family))  # the main table's family size
        sensitivity.append({"level": level, "variant": row.variant, "comparison": row.comparison,
                            "estimate": row.estimate, "verdict": row.verdict, **rates,
                            "runner_up_minus_chosen": shift["estimate"],
                            **{f"{k}_vs_runner_up": against[k] for k in ("estimate", "ci_low", "ci_high", "verdict")}})
shown = ["level", "variant", "comparison", "estimate", "verdict", "estimate_vs_runner_up", "ci_low_vs_runner_up",
         "ci_high_vs_runner_up", "verdict_vs_runner_up", "changed"]
sensitivity = pd.DataFrame(sensitivity, columns=[*shown[:-1], "chosen_lr", "runner_up_lr", "runner_up_minus_chosen"])
sensitivity["changed"] = sensitivity["verdict"] != sensitivity["verdict_vs_runner_up"]
if len(sensitivity):
    save_table(sensitivity, f"05_sensitivity_{PROFILE}", FIG_DIR, stamp)
else:
    print(f"no baseline run at a runner-up rate in {FIG_DIR}: the {PROFILE} profile tries one learning rate")
sensitivity[shown].round(4)

# %% [markdown] tags=[]
# ### The learning-rate sweep
#
# Final validation loss of each arm at each rate of the sweep (tuning seeds only); each arm's chosen rate is
# ringed. In `full` and `gpu` it is the lower of the arm's two best rates on the tuning seed after both trained
# on two more seeds (those two points are three-seed means, the others one seed). A line that reaches further
# than ×0.5–×4 is an arm whose best lay on the edge of the grid and tried more rates out. In a profile with a
# single rate there is no sweep to show.

# %% tags=[]
sweeps = [Path(FIG_DIR) / f"05_lr_sweep_{level}_{PROFILE}.csv" for level in levels]
sweep = pd.concat([read_table(p) for p in sweeps if p.exists()], ignore_index=True) if any(
    p.exists() for p in sweeps) else pd.DataFrame()
if len(sweep) and "learning_rate" in sweep:
    palette = arm_palette(summary["variant"])
    fig, axes = plt.subplots(1, len(levels), figsize=(7 * len(levels), 4.5), squeeze=False)
    for ax, level in zip(axes[0], levels, strict=True):
        sns.lineplot(data=sweep[sweep["level"] == level], x="learning_rate", y="final_val_loss_mean", hue="variant",
                     palette=palette, marker="o", ax=ax, legend=level == levels[-1])
        chosen_points = sweep[(sweep["level"] == level) & sweep["chosen"]]  # each arm's rate, ringed
        ax.scatter(chosen_points["learning_rate"], chosen_points["final_val_loss_mean"], s=140, facecolors="none",
                   edgecolors="black", linewidths=1.2, zorder=5)
        ax.set(xscale="log", xlabel="peak learning rate (log)", ylabel="validation cross-entropy, whole split (nats)",
               title=f"{level} level (tuning seeds {plan.seeds})")
    sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    save_figure(fig, sweep, f"05_lr_sweep_{PROFILE}", FIG_DIR, sweep_stamp,
                title="learning-rate sweep, every arm")
else:
    print(f"one learning rate in the {PROFILE} profile ({ablation_cfg.learning_rate:g}): no sweep")

# %% tags=[]
palette = arm_palette(summary["variant"])  # one colour per arm in every panel below
fig, axes = plt.subplots(1, len(levels), figsize=(6.5 * len(levels), 0.42 * arms["variant"].nunique() + 2),
                         squeeze=False)
for ax, level in zip(axes[0], levels, strict=True):
    rows = arms[arms["level"] == level].assign(
        variant=lambda t: [v if r == "baseline" else f"{v} − {r}" for v, r in zip(t["variant"], t["reference"],
                                                                                   strict=True)])
    forest(rows, ax=ax, margin=0.02, palette=arm_palette(rows["variant"]),
           label="Δ test loss vs its reference (nats; simultaneous 95% CI)")
    ax.set_title(f"{level} level")
    ax.legend(loc="lower right", fontsize=7)
save_figure(fig, arms, f"05_forest_{PROFILE}", FIG_DIR, stamp,
            title="each arm − baseline (and each control comparison), paired by seed")

# %% tags=[]
fig, axes = plt.subplots(1, len(levels), figsize=(7 * len(levels), 4.5), squeeze=False)
for ax, level in zip(axes[0], levels, strict=True):
    level_runs = all_runs[(all_runs["level"] == level) & (all_runs["step"] > 0)].assign(  # step 0 flattens the rest
        arm=lambda t: t["variant"].str.removesuffix("@compute"),  # an equal-compute copy: its arm's colour, dashed
        budget=lambda t: t["variant"].str.endswith("@compute").map({False: "equal steps", True: "equal compute"}))
    sns.lineplot(data=level_runs, x="step", y="val_loss", hue="arm", style="budget",
                 style_order=["equal steps", "equal compute"], errorbar=("ci", 95), ax=ax, legend=level == levels[-1],
                 palette=arm_palette(all_runs["variant"].str.removesuffix("@compute")))
    ax.set(title=f"{level} level", xlabel="training step", ylabel="validation cross-entropy (nats)")
sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
save_figure(fig, all_runs[["level", "variant", "seed", "step", "train_loss", "val_loss"]], f"05_curves_{PROFILE}",
            FIG_DIR, stamp, title="validation loss (band: 95% CI over seeds)")

# %% [markdown] tags=[]
# ### Cost against quality
#
# Each arm's training throughput against its final validation loss, with the baseline's as guide lines. An
# arm worth its cost sits below the horizontal line (better) without moving far left of the vertical one
# (slower).

# %% tags=[]
fig, axes = plt.subplots(1, len(levels), figsize=(7 * len(levels), 5), squeeze=False)
for ax, level in zip(axes[0], levels, strict=True):
    cost_quality(summary[summary["level"] == level], ax=ax, palette=palette)
    ax.set(title=f"{level} level (dashed: the baseline's loss; dotted: its speed)",
           ylabel="final validation cross-entropy (nats)")
axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
save_figure(fig, summary, f"05_cost_quality_{PROFILE}", FIG_DIR, stamp, title="cost against quality")

# %% [markdown] tags=[]
# ## The claim, measured
#
# "Every resonance component together beats a matched baseline": the `everything` arm at each level, with the
# 0.02-nat margin. Each level's rows are corrected within that level's whole family of comparisons above (every
# arm, every equal-compute copy, every control), not within the two rows alone: the claim table then gives the
# `everything` arm the same interval, Holm p and verdict as the ablation table, and a reader cannot get a
# sharper verdict by recording fewer comparisons.

# %% tags=[]
measurements, other_p_values = [], {}
for level in levels:
    level_runs, family = all_runs[all_runs["level"] == level], f"{level} level"
    claimed = [("everything", "equal_steps"), ("everything@compute", "equal_compute")]
    for arm, comparison in claimed:
        if arm in set(level_runs["variant"]):
            row = arms[(arms["level"] == level) & (arms["variant"] == arm) & (arms["reference"] == "baseline")].iloc[0]
            budget = (f"{ablation_cfg.max_iters} steps each" if comparison == "equal_steps" else
                      f"the steps that fit in the baseline's training time at {row.throughput_ratio:.2f}× its throughput")
            measurements.append(measure("everything_beats_baseline", level_runs, arm, comparison=comparison,
                                        label=family, family=family,
                                        context=f"{budget}; lower than the baseline on {row.seeds_lower} of "
                                                f"{row.n_seeds} seeds"))
    rest = arms[(arms["level"] == level) & ~(arms["variant"].isin([arm for arm, _ in claimed])
                                              & (arms["reference"] == "baseline"))]
    other_p_values[family] = rest["p_value"].tolist()
claims = record_claims(measurements, "05", stamp, FIG_DIR, other_p_values=other_p_values)
claims[["claim_id", "label", "n_seeds", "estimate", "ci_low", "ci_high", "family_size", "p_holm", "power", "verdict",
        "supports"]].round(4)

# %% tags=[]
facts = []
for level in levels:
    rows = arms[(arms["level"] == level) & (arms["reference"] == "baseline")]
    for comparison in ("equal_steps", "equal_compute"):
        chosen_rows = rows[rows["comparison"] == comparison]
        by_verdict = {v: ", ".join(f"{r.arm} ({r.estimate:+.3f}, {r.throughput_ratio:.2f}×)"
                                   for r in chosen_rows[chosen_rows["verdict"] == v].itertuples())
                      for v in ("better", "worse", "equivalent", "inconclusive")}
        if len(chosen_rows):
            facts.append(f"{level} level at {comparison.replace('_', ' ')}, against the baseline (Δ nats, training "
                         "throughput): " + "; ".join(f"{v}: {names}" for v, names in by_verdict.items() if names) + ".")
    controls_rows = arms[(arms["level"] == level) & (arms["reference"] != "baseline")]
    if len(controls_rows):
        facts.append(f"{level} level, controls: " + "; ".join(
            f"{r.variant} − {r.reference} {r.estimate:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] ({r.verdict})"
            for r in controls_rows.itertuples()) + ".")
    level_costs = costs[costs["level"] == level]
    rates = ", ".join(f"{r.variant} {r.learning_rate:g}" for r in level_costs.itertuples())
    if len(plan.multipliers) > 1:  # with one rate nothing was chosen: the caveat below says so
        facts.append(f"{level} level, learning rate chosen by the sweep ({len(plan.multipliers)} rates): {rates}.")
for level, rows in sensitivity.groupby("level", sort=False):
    changed = rows[rows["changed"]]
    facts.append(f"{level} level, sensitivity: against the baseline at its runner-up rate "
                 f"{rows['runner_up_lr'].iloc[0]:g} instead of {rows['chosen_lr'].iloc[0]:g} (runner-up − chosen: "
                 f"{rows['runner_up_minus_chosen'].iloc[0]:+.3f} nats on the evaluation seeds), " + (
                     f"{len(changed)} of {len(rows)} verdicts change: " + "; ".join(
                         f"{r.variant} {r.verdict} → {r.verdict_vs_runner_up}" for r in changed.itertuples())
                     if len(changed) else f"none of the {len(rows)} verdicts changes") + ".")
if baseline_runs_file.exists():
    facts.append(f"The baseline's best validation loss over {len(best)} seeds, {mean:.4f} [{low:.4f}, {high:.4f}] "
                 f"after {runs['step'].max()} steps, {verdict} nanoGPT's published {published[1]} ({published[0]}).")
caveats = [f"Run length: the ablation trains {ablation_cfg.max_iters} steps (part 1's baseline runs "
           f"{train_cfg.max_iters}); an arm that pays off only later would be missed."]
if len(plan.multipliers) == 1:
    caveats.append(f"No learning-rate sweep in the {PROFILE} profile: every arm trains at {ablation_cfg.learning_rate:g}, "
                   "tuned for none of them.")
for level, edge in (sweep[sweep["at_edge"]].groupby("level", sort=False) if "at_edge" in sweep else ()):
    steps = []  # each arm whose chosen rate is the largest or smallest it tried: the last step of its sweep
    for arm, tried in edge.groupby("variant", sort=False):
        tried = tried.sort_values("multiplier").reset_index(drop=True)
        at = tried.index[tried["chosen"]][0]
        near = tried.iloc[at - 1 if at == len(tried) - 1 else at + 1]
        best = tried.iloc[at]
        steps.append(f"{arm} ×{best.multiplier:g} vs ×{near.multiplier:g}: "
                     f"{best.final_val_loss_mean - near.final_val_loss_mean:+.3f} nats ({best.n_seeds} and "
                     f"{near.n_seeds} seeds)")
    caveats.append(f"{level} level: {len(steps)} arm(s) chose the largest or smallest rate they tried, so their best "
                   "may lie further out; the last step of each one's sweep moved its mean validation loss by "
                   + "; ".join(steps) + " (the margin is 0.02).")
what_we_found(claims, stamp, facts=facts, caveats=caveats);
