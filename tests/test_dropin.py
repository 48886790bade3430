"""The README's "Using a component in your own model" code runs as written, without ResonanceLM."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def dropin_code() -> str:
    section = README.read_text(encoding="utf-8").split("## Using a component in your own model", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the README's drop-in section has no python block"
    return "\n".join(blocks)


def test_the_readme_dropin_example_runs_and_trains_every_component():
    namespace: dict = {}
    torch.manual_seed(0)
    exec(compile(dropin_code(), "README.md (drop-in)", "exec"), namespace)  # noqa: S102
    model, logits = namespace["model"], namespace["logits"]
    assert "ResonanceLM" not in dropin_code()
    assert logits.shape == (2, 32, 50) and torch.isfinite(namespace["loss"])
    used = {type(m).__name__ for m in model.modules()}
    assert {"PhaseEmbedding", "PrimeHilbertEncoder", "PhaseResonanceAttention", "HaltingAttention",
            "PrimeMaskedLinear", "DeltaResidual", "ResonanceMemory", "PreManifestHead"} <= used
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not silent, f"parameters without a gradient: {silent}"  # every component is in the graph
    wte = namespace["wte"]
    assert wte.phase.weight.std() > 0.1  # reset_components restored the N(0, 0.3²) phases after the init
