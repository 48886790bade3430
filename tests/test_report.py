"""The README's generated sections: the claim table, benchmark tables and run times come from files, not hands."""

import json

import nbformat
import pandas as pd
import pytest

STAMP = {"profile": "cpu", "device": "cpu (2 threads)", "seeds": "0 1 2", "commit": "abc1234"}


def _summary(path, rows):
    pd.DataFrame([{**r, **STAMP} for r in rows]).to_csv(path, index=False)


def test_the_claim_table_is_the_recorded_claims_file_rendered_as_it_is(tmp_path):
    from resonance_lib.claims import Measurement, record_claims
    from resonance_lib.plots import Stamp
    from resonance_lib.report import claim_table, render

    stamp = Stamp("quick", "cpu (2 threads)", (0, 1, 2, 3, 4, 5), "abc1234")
    rows = record_claims([Measurement("phase_beats_standard", "equal_steps", [0.2, 0.21, 0.19, 0.2, 0.22, 0.18],
                                      label="random phases", context="baseline perplexity 12.3")], "03", stamp,
                         tmp_path)
    record_claims([Measurement("everything_beats_baseline", "equal_compute", [0.1, 0.12, 0.09], label="char")], "05",
                  stamp, tmp_path)
    table = claim_table(tmp_path, "quick")
    assert list(table["nb"]) == ["03", "05"] and list(table["verdict"]) == ["worse", "worse"]
    assert list(table["the claim"]) == ["contradicted", "contradicted"]
    first = rows.iloc[0]
    assert table["simultaneous 95% CI"].iloc[0] == f"[{first['ci_low']:+.4f}, {first['ci_high']:+.4f}]"
    assert table["comparison"].iloc[1] == "equal compute" and table["their number"].iloc[1] == ""
    assert list(table["what it rests on"]) == ["baseline perplexity 12.3", ""]
    assert "Claim vs measured (quick profile)" in render(tmp_path, "quick", only_existing=True)
    assert claim_table(tmp_path, "gpu") is None  # nothing recorded in that profile: no table


def test_benchmarks_and_run_times_render_from_their_files(tmp_path):
    from resonance_lib.report import render_benchmarks, render_run_times

    (tmp_path / "bench_train_cpu_baby.json").write_text(json.dumps({
        "benchmark": "bench_train", "device": "cpu (2 threads)", "torch": "2.13.0", "commit": "abc", "date": "2026-11-24",
        "size": "baby", "batch_size": 12, "steps": 60, "compile": False,
        "results": [{"variant": "baseline", "params": 10, "tokens_per_s": 2000.0, "relative_to_baseline": 1.0},
                    {"variant": "delta_dv1", "params": 10, "tokens_per_s": 1500.0, "relative_to_baseline": 0.75}]}))
    text = render_benchmarks(tmp_path)
    assert "`bench_train_cpu_baby.json`** — device cpu (2 threads)" in text and "| delta_dv1 | 10 | 1,500 | 0.75 |" in text
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"duration": 90.0, "end_time": "2026-11-24T01:00:00", "parameters": {"PROFILE": "cpu"}}
    nbformat.write(nb, tmp_path / "01_x.ipynb")
    nbformat.write(nb, tmp_path / "02_y.ipynb")
    nb.metadata["resonance_run"] = {"cpu_seconds": 170.5, "cores": 2, "load_average_start": 0.1,
                                    "load_average_end": 2.0}
    nbformat.write(nb, tmp_path / "03_z.ipynb")
    times = render_run_times(tmp_path)
    assert "total cpu: 4.5 min" in times and "| 01_x | cpu | 90 |  | not recorded | 2026-11-24T01:00:00 |" in times
    assert "| 03_z | cpu | 90 | 170.5 | 0.1, 2.0 | 2026-11-24T01:00:00 |" in times
    assert "executed last from its run cache" not in times  # no committed profile here
    nb.metadata["papermill"]["parameters"]["PROFILE"] = "full"
    nbformat.write(nb, tmp_path / "05_w.ipynb")
    assert "executed last from its run cache" in render_run_times(tmp_path)  # its minutes are not the training's


def test_cost_quality_and_forest_plot_the_summary_values():
    import matplotlib

    matplotlib.use("Agg")
    from resonance_lib.plots import cost_quality, forest

    summary = pd.DataFrame({"variant": ["baseline", "x"], "tokens_per_s": [1000.0, 250.0], "val_loss_mean": [2.0, 1.8],
                            "ci_low": [1.9, 1.7], "ci_high": [2.1, 1.9], "delta_mean": [0.0, -0.2],
                            "delta_ci_low": [0.0, -0.3], "delta_ci_high": [0.0, -0.1]})
    ax = cost_quality(summary).axes[0]
    points = [c.lines[0].get_data() for c in ax.containers]
    assert [(float(x[0]), float(y[0])) for x, y in points] == [(1000.0, 2.0), (250.0, 1.8)]
    assert ax.get_xscale() == "log" and ax.get_legend_handles_labels()[1] == ["baseline", "x"]
    guides = [line for line in ax.lines if line.get_linestyle() in ("--", ":")]
    assert sorted(float(line.get_ydata()[0]) for line in guides if line.get_linestyle() == "--") == [2.0]
    ax = forest(summary, margin=0.02).axes[0]
    assert [float(c.lines[0].get_xdata()[0]) for c in ax.containers] == [0.0, -0.2]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["baseline", "x"]


def test_the_sweep_figure_draws_every_rate_and_rings_the_chosen_one(tmp_path, capsys):
    import matplotlib

    matplotlib.use("Agg")
    from resonance_lib.plots import Stamp, lr_sweep, read_table, save_sweep

    sweep = pd.DataFrame({"variant": ["a", "a", "a", "b", "b", "b"], "learning_rate": [1e-3, 2e-3, 4e-3] * 2,
                          "final_val_loss_mean": [2.0, 1.8, 1.9, 2.5, 2.6, 2.7]})
    ax = lr_sweep(sweep).axes[0]
    assert ax.get_xscale() == "log" and [line.get_label() for line in ax.lines] == ["a", "b"]
    assert [list(line.get_ydata()) for line in ax.lines] == [[2.0, 1.8, 1.9], [2.5, 2.6, 2.7]]
    ringed = [tuple(c.get_offsets()[0]) for c in ax.collections]
    assert ringed == [(2e-3, 1.8), (1e-3, 2.5)]  # each arm's lowest loss
    stamp = Stamp("full", "cpu", (0, 1), "abc")
    assert save_sweep(sweep, "s", tmp_path, stamp, tuning_seeds=[100]) is not None and (tmp_path / "s.png").exists()
    assert set(read_table(tmp_path / "s.csv")["seeds"]) == {"100"}  # the seeds it trained on, not the notebook's
    assert save_sweep(pd.DataFrame(), "t", tmp_path, stamp, title="x", tuning_seeds=[100]) is None
    assert not (tmp_path / "t.png").exists() and "one learning rate in the full profile" in capsys.readouterr().out
    with pytest.raises(ValueError, match="tuning_seeds"):
        save_sweep(sweep, "u", tmp_path, stamp, tuning_seeds=[])


def test_stamps_read_back_as_text_even_when_a_commit_looks_like_a_number(tmp_path):
    from resonance_lib.plots import Stamp, read_table, save_table

    save_table(pd.DataFrame({"x": [1]}), "t", tmp_path, Stamp("cpu", "cpu", (0, 1), "77722e4"))
    assert pd.read_csv(tmp_path / "t.csv")["commit"].dtype != object  # what plain read_csv does
    table = read_table(tmp_path / "t.csv")
    assert table["commit"].iloc[0] == "77722e4" and table["seeds"].iloc[0] == "0 1"


def test_a_saved_table_keeps_each_runs_own_device_and_commit(tmp_path):
    from resonance_lib.plots import Stamp, read_table, save_table

    runs = pd.DataFrame({"variant": ["a", "b"], "device": ["cpu (1 threads)"] * 2, "commit": ["7496a45", "35911c1"]})
    save_table(runs, "runs", tmp_path, Stamp("full", "cuda (H200)", (0, 1), "f8735cd"))
    table = read_table(tmp_path / "runs.csv")  # a run read from the cache was trained at its own commit
    assert table["commit"].tolist() == ["7496a45", "35911c1"] and set(table["device"]) == {"cpu (1 threads)"}
    assert set(table["profile"]) == {"full"} and set(table["seeds"]) == {"0 1"}


def test_a_figure_table_carries_the_stamp_but_keeps_each_runs_own_commit(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resonance_lib.plots import Stamp, read_table, save_figure
    from resonance_lib.report import render

    stamp = Stamp("quick", "cpu (2 threads)", (0, 1), "new1234")
    save_figure(plt.figure(), pd.DataFrame({"x": [1, 2]}), "04_summary_quick", tmp_path, stamp)
    assert read_table(tmp_path / "04_summary_quick.csv")[["profile", "commit"]].iloc[0].tolist() == ["quick", "new1234"]
    runs = pd.DataFrame({"step": [0, 1], "commit": ["old0001", "old0001"], "device": ["cpu", "cpu"]})
    save_figure(plt.figure(), runs, "05_curves_quick", tmp_path, stamp)
    written = read_table(tmp_path / "05_curves_quick.csv")
    assert (written["commit"] == "old0001").all() and (written["profile"] == "quick").all()
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "03_phase_summary_quick.csv", index=False)  # an unstamped table
    assert "carries no provenance stamp" in render(tmp_path, "quick")


def test_the_training_in_a_committed_run_cache_is_counted_from_its_histories(tmp_path):
    from resonance_lib.report import render_cache_time

    assert render_cache_time(tmp_path) == ""  # no cache: nothing to say
    for i, (elapsed, status) in enumerate([(3600.0, "ok"), (1800.0, "ok"), (900.0, "failed")]):
        folder = tmp_path / "full" / f"key{i}"
        folder.mkdir(parents=True)
        rows = [{"step": 0, "elapsed_s": 0.0, "device": "cpu", "status": "ok"},
                {"step": 10, "elapsed_s": elapsed, "device": "cpu", "status": status}]
        (folder / "history.json").write_text(json.dumps({"schema": {}, "data": rows}))
    (tmp_path / "smoke" / "key").mkdir(parents=True)  # an uncommitted profile's cache is left out
    (tmp_path / "smoke" / "key" / "history.json").write_text(json.dumps({"data": [{"elapsed_s": 7200.0}]}))
    text = render_cache_time(tmp_path)
    assert "| full | cpu | 3 | 1 | 1.8 |" in text and "smoke" not in text


def test_the_readme_opening_counts_the_claims_of_the_committed_profile_before_the_exploratory_one(tmp_path):
    from resonance_lib.claims import Measurement, record_claims
    from resonance_lib.plots import Stamp
    from resonance_lib.report import render_headline

    assert "No notebook has recorded a claim yet" in render_headline(tmp_path)
    better, worse = [-0.2, -0.21, -0.19, -0.2, -0.22, -0.18], [0.2, 0.21, 0.19, 0.2, 0.22, 0.18]
    record_claims([Measurement("phase_beats_standard", "equal_steps", better, label="random phases"),
                   Measurement("phase_beats_standard", "equal_compute", worse, label="random phases")], "03",
                  Stamp("quick", "cpu (2 threads)", (0, 1, 2, 3, 4, 5), "abc1234"), tmp_path)
    quick = render_headline(tmp_path)
    assert "`quick` profile" in quick and "of the 2 comparisons recorded for 1 claim in notebook 03" in quick
    assert "1 supports its claim, 1 contradicts it" in quick and "exploratory" in quick
    assert "phase_beats_standard (notebook 03, random phases, equal steps)" in quick
    record_claims([Measurement("phase_beats_standard", "equal_steps", worse, label="random phases")], "03",
                  Stamp("full", "cpu (1 threads)", (0, 1, 2, 3, 4, 5), "def5678"), tmp_path)
    full = render_headline(tmp_path)  # the committed profile leads once it has claims
    assert "`full` profile" in full and "commit def5678" in full and "1 contradicts it" in full
    assert "No comparison supports its claim" in full and "exploratory" not in full
    assert "Not yet in the `full` profile" not in full  # quick's only notebook is in full: nothing left to show
    # a notebook that only quick has recorded is still counted, apart and labelled with quick's caveat
    record_claims([Measurement("halting_saves_compute", "equal_steps", better, label="ε = 1")], "04",
                  Stamp("quick", "cpu (2 threads)", (0, 1, 2), "abc1234"), tmp_path)
    both = render_headline(tmp_path)
    lead, rest = both.split("**Not yet in the `full` profile**")
    assert "of the 1 comparison recorded for 1 claim in notebook 03, 1 contradicts it" in lead
    assert "notebook 04, counted from `figures/claims_quick.csv`" in rest and "exploratory" in rest
    assert "of the 1 comparison recorded for 1 claim in notebook 04, 1 supports its claim" in rest
    assert "halting_saves_compute (notebook 04, ε = 1, equal steps)" in rest and "notebook 03" not in rest
    # several comparisons with one outcome take the plural
    record_claims([Measurement("phase_beats_standard", "equal_steps", worse, label=label)
                   for label in ("random phases", "phonetic phases")], "03",
                  Stamp("full", "cpu (1 threads)", (0, 1, 2, 3, 4, 5), "def5678"), tmp_path)
    assert "of the 2 comparisons recorded for 1 claim in notebook 03, 2 contradict it" in render_headline(tmp_path)
