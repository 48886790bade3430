"""resonance_lib: resonance-transformer ideas, implemented plainly and tested against matched baselines.

One module per concept; each is usable alone, e.g. ``from resonance_lib.model import ResonanceLM``.
"""

__version__ = "0.1.0"
