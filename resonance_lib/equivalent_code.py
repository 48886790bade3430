"""Library versions reviewed as training the same runs as an earlier version, so that they reuse its finished runs
instead of training them again.

``RESULT_EQUIVALENT_CODE`` maps a ``experiments.code_version()`` to ``(the earlier version, (fingerprint recorded
by the earlier version, fingerprint recorded by this one))``. The fingerprints are ``benchmarks/results`` files of
``benchmarks/history_fingerprint.py --size baby``: every arm of ``SWITCHES``, the baseline and a sparse arm trained
from one seed at the ``full`` profile's model size, losses to the last bit. An entry is made only where their
comparison finds every arm identical or equal up to rounding (what a fused autograd node or another summation
order changes, like a different thread count); ``tests/test_grid.py`` checks each entry against its two files.
Any other edit of a training module gives a version that is not listed here: new keys, and the runs train again.

``TIMING_EQUIVALENT_CODE`` does the same for throughput timings (``compute.measure_throughput``), which are keyed by
the exact version because a faster implementation trains the same runs at another speed: it maps a version to an
earlier one whose timed work — ``train()``'s step loop, the models and the callbacks — it runs unchanged, so that
the earlier version's timing (and the equal-compute steps derived from it) stands. An entry is made only where the
versions' training modules differ outside that work (the grid, the final whole-split scores); the comment says
where.

This file is not one of the training modules (``experiments.TRAINING_MODULES``): an entry names the version of
those modules, so it cannot live among them.
"""

RESULT_EQUIVALENT_CODE: dict[str, tuple[str, tuple[str, str]]] = {
    # 2175d9e trains 35911c1's runs (the commit notebook 05's `full` run began at). Between them: the fused
    # write-only node, contiguous read taps, the fused attention-with-entropy node of halting attention, batched
    # host syncs and prefetched batches, options that default to the old behaviour (the lookup task, MNIST
    # shifts, halting ε up to 2, delta_compiled). Fingerprints: 11 arms identical, 4 within 1.0e-6 relative
    # (delta_dv4, write_dv4, halting_attention, prime_all), none different.
    "9ebb3e81e49838d5": ("1d46faff827a7323", ("history_fingerprint_baby_35911c1.json",
                                              "history_fingerprint_baby_2175d9e.json")),
    # 14a5967: run_grid returns only the models asked for (what a run trains is unchanged). Fingerprints as above.
    "cf4d2b72394a026f": ("1d46faff827a7323", ("history_fingerprint_baby_35911c1.json",
                                              "history_fingerprint_baby_14a5967.json")),
    # 0a481fd: phase.phase_use, which PhaseProbe calls (an observer; what a run trains is unchanged).
    "c229595c8a7116cc": ("1d46faff827a7323", ("history_fingerprint_baby_35911c1.json",
                                              "history_fingerprint_baby_0a481fd.json")),
    # 7963522: halting.halting_use and halting_counts, which HaltingProbe calls (observers; what a run trains is
    # unchanged).
    "7d3bbcbc8404e19d": ("1d46faff827a7323", ("history_fingerprint_baby_35911c1.json",
                                              "history_fingerprint_baby_7963522.json")),
    # ff11d98: the whole-split evaluation sends at least EVAL_TOKENS tokens per forward (the same sum, batched
    # differently; the fingerprints hold the periodic losses, not the final ones). Against 35911c1's file all 15 arms
    # are within rounding, but that is the machine: recorded on one CPU (AMD EPYC), 7496a45 (7963522's training
    # code) and ff11d98 are identical in all 15 (history_fingerprint_baby_7496a45_same_machine_as_ff11d98.json).
    "ebd9f6d784c13ec5": ("1d46faff827a7323", ("history_fingerprint_baby_35911c1.json",
                                              "history_fingerprint_baby_ff11d98.json")),
    # b4f3dda: the grid's partial checkpoints (run_grid, execute_run, partial_checkpoint_path: a cached run saves a
    # checkpoint at every evaluation and resumes from it when cut off; the trainer's checkpoints resume bit for bit).
    # Against 7496a45's file (history_fingerprint_baby_7496a45_same_machine_as_ff11d98.json) all 15 arms identical.
    "459c7f8c179ef2f5": ("1d46faff827a7323", ("history_fingerprint_baby_35911c1.json",
                                              "history_fingerprint_baby_b4f3dda.json")),
}

TIMING_EQUIVALENT_CODE: dict[str, str] = {
    # 7496a45's training code (7d3bbcbc8404e19d) timed every `full` arm so far. Since then the training modules
    # changed only in experiments.py, outside the timed step loop: final_metrics batches the whole-split scoring
    # (EVAL_TOKENS, ff11d98: run after training, never timed), and run_grid/execute_run keep partial checkpoints
    # (the timing calls train() itself, with checkpoint_path=None).
    "ebd9f6d784c13ec5": "7d3bbcbc8404e19d",
    "459c7f8c179ef2f5": "7d3bbcbc8404e19d",
}
