"""What every resonance component promises its host model: it owns its initialisation, and it reports its
auxiliary loss terms instead of adding them to anything.

A component is ready to use once constructed. Hosts such as nanoGPT's ``GPT`` (and ``ResonanceLM``) then
re-initialise every ``nn.Linear`` and ``nn.Embedding`` their own way (N(0, 0.02)); that overwrites, for
example, the bias that sets the delta residual's β or the phase table of a phase embedding. So after its own
init a host calls ``reset_components(model)``, and each component's ``reset_parameters()`` sets again the
parameters whose initialisation is part of its mechanism. Its Linear and Embedding sub-layers keep the host's
initialisation.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class Component(nn.Module):
    """Base class of the resonance mechanisms (see the module docstring)."""

    def reset_parameters(self) -> None:
        """Initialise the parameters whose initialisation is part of the mechanism (none by default)."""

    def auxiliary_losses(self) -> dict[str, torch.Tensor]:
        """Unweighted auxiliary terms of the last forward pass, by name (e.g. ``{"ponder": N + R}``). The host
        weighs each (``ResonanceConfig.<name>_weight``) and adds it to the training objective, never to the
        reported cross-entropy."""
        return {}


def reset_components(model: nn.Module) -> None:
    """Call ``reset_parameters()`` of every component inside ``model``, in module order, after the host's own
    initialisation."""
    for module in model.modules():
        if isinstance(module, Component) and module is not model:
            module.reset_parameters()


def collect_auxiliary_losses(model: nn.Module) -> dict[str, torch.Tensor]:
    """Σ over the components inside ``model`` of their auxiliary terms, by name."""
    totals: dict[str, torch.Tensor] = {}
    for module in model.modules():
        if isinstance(module, Component) and module is not model:
            for name, value in module.auxiliary_losses().items():
                totals[name] = totals.get(name, 0) + value
    return totals
