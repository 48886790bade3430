import json

from benchmarks import bench_train


def test_bench_train_times_the_fused_and_reference_forms_interleaved(tmp_path):
    out = tmp_path / "bench.json"
    bench_train.main(["--variants", "delta_dv4", "halting_attention", "--reference", "--steps", "2", "--repeats", "2",
                      "--size", "tiny", "--out", str(out)])
    result = json.loads(out.read_text())
    rows = {r["variant"]: r for r in result["results"]}
    assert list(rows) == ["baseline", "delta_dv4", "delta_dv4_reference", "halting_attention",
                          "halting_attention_reference"]
    assert rows["baseline"]["relative_to_baseline"] == 1.0 and result["timing"].startswith("interleaved")
    assert all(len(r["tokens_per_s_rounds"]) == 2 and r["flops_per_token"] > 0 for r in rows.values())
    assert rows["delta_dv4"]["params"] == rows["delta_dv4_reference"]["params"]
    assert rows["halting_attention"]["mean_iterations"] == rows["halting_attention_reference"]["mean_iterations"]
    assert result["commit"] and result["torch"] and result["device"]


def test_bench_attention_times_every_form_interleaved(tmp_path):
    from benchmarks import bench_attention

    out = tmp_path / "attention.json"
    bench_attention.main(["--seq-lens", "32", "--rounds", "2", "--device", "cpu", "--out", str(out)])
    result = json.loads(out.read_text())
    rows = {r["form"]: r for r in result["results"]}
    assert set(rows) == {"plain_sdpa", "phase_fast", "phase_explicit"} and result["timing"].startswith("interleaved")
    assert all(len(r["ms_rounds"]) == 2 and r["ms"] > 0 for r in rows.values())
    assert rows["plain_sdpa"]["time_vs_plain"] == 1.0


def test_bench_trainer_times_ours_against_a_nanogpt_style_loop(tmp_path):
    from benchmarks import bench_trainer
    from resonance_lib.report import render_benchmarks
    from resonance_lib.train import TrainConfig

    cfg = TrainConfig(max_iters=100, warmup_iters=10, learning_rate=1e-3, min_lr=1e-4)
    assert bench_trainer.nanogpt_lr(0, cfg) < bench_trainer.nanogpt_lr(9, cfg) < 1e-3  # warm-up
    assert bench_trainer.nanogpt_lr(10, cfg) == 1e-3 and abs(bench_trainer.nanogpt_lr(100, cfg) - 1e-4) < 1e-12
    out = tmp_path / "bench_trainer_cpu_baby.json"
    bench_trainer.main(["--steps", "2", "--repeats", "2", "--device", "cpu", "--out", str(out)])
    result = json.loads(out.read_text())
    assert len(result["ours_tokens_per_s"]) == len(result["nanogpt_loop_tokens_per_s"]) == 2 and result["ratio"] > 0
    assert "against a nanoGPT-style loop" in render_benchmarks(tmp_path)


def test_bench_train_arms_compile_only_the_fused_forms():
    """--reference with --compiled: the compiled copy follows the fused arm; the plain reference forms, which
    delta_compiled cannot replace, get none (the two flags together used to fail building the arms)."""
    variants = bench_train.arms(["delta_dv4", "write_dv4", "delta_dv1"], bench_train.SIZES["baby"][0],
                                reference=True, compiled=True)
    assert [v.name for v in variants] == ["baseline", "delta_dv4", "delta_dv4_compiled", "delta_dv4_reference",
                                          "write_dv4", "write_dv4_compiled", "write_dv4_reference", "delta_dv1"]
    assert variants[2].config.delta_compiled and not variants[3].config.delta_fused


def test_history_fingerprints_compare_identical_rounding_and_different():
    from benchmarks.history_fingerprint import compare

    def fingerprint(values):
        return {"meta": {}, "arms": {"char/a": {"val_loss": [float(v).hex() for v in values]}}}

    assert compare(fingerprint([1.0, 2.0]), fingerprint([1.0, 2.0])) == {"char/a": "identical"}
    assert compare(fingerprint([1.0, 2.0]), fingerprint([1.0, 2.0 * (1 + 1e-7)])) == {"char/a": "rounding"}
    assert compare(fingerprint([1.0, 2.0]), fingerprint([1.0, 2.001])) == {"char/a": "DIFFERENT"}
    assert compare(fingerprint([1.0, 2.0]), {"meta": {}, "arms": {}}) == {"char/a": "DIFFERENT"}  # an arm missing


def test_a_fingerprint_comparison_across_machines_says_so():
    from benchmarks.history_fingerprint import summary

    def fingerprint(commit, cpu, value):
        meta = {"commit": commit, **({"cpu": cpu, "torch": "2.13.0"} if cpu else {})}
        return {"meta": meta, "arms": {"char/a": {"val_loss": [float(value).hex()]}}}

    lines, different = summary(fingerprint("a1", "Intel Xeon", 2.0), fingerprint("b2", "Intel Xeon", 2.0))
    assert lines[-1] == "a1 → b2: 1 identical, 0 rounding, 0 DIFFERENT" and not different
    lines, different = summary(fingerprint("a1", "Intel Xeon", 2.0), fingerprint("b2", "AMD EPYC", 2.0 * (1 + 1e-7)))
    assert "different machines (CPU Intel Xeon" in lines[-1] and "AMD EPYC" in lines[-1] and not different
    lines, _ = summary(fingerprint("a1", None, 2.0), fingerprint("b2", "AMD EPYC", 2.0))  # an older file
    assert "CPU not recorded" in lines[-1]
    assert summary(fingerprint("a1", "x", 2.0), fingerprint("b2", "x", 2.1))[1]  # DIFFERENT
