"""Run profiles shared by every notebook: ``smoke`` (CI: all five notebooks in minutes), ``quick`` (the default
of ``make notebooks``: all five within 30 minutes on a 2-core laptop; exploratory), ``full`` (the protocol at the
nanoGPT baby size on CPU: hours, resumable through the run cache; the committed results) and ``gpu`` (the
larger model on a GPU). Profiles change sizes, steps and seeds, never code paths."""

from __future__ import annotations

from typing import TypeVar

PROFILES = ("smoke", "quick", "full", "gpu")

T = TypeVar("T")


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"PROFILE={profile!r} is not a profile; allowed: {list(PROFILES)}")
    return profile


_MISSING = object()


def pick(profile: str, *, smoke: T, quick: T, gpu: T, full: T = _MISSING) -> T:
    """The value for ``profile``: ``pick(PROFILE, smoke=20, quick=500, gpu=5000, full=2000)``. A setting without
    a ``full`` value is not part of the ``full`` profile yet, and asking for it says so."""
    check_profile(profile)
    if profile == "full" and full is _MISSING:
        raise ValueError("PROFILE='full' is not available here yet: this setting has values only for "
                         "'smoke', 'quick' and 'gpu'; give it a full=... value")
    return {"smoke": smoke, "quick": quick, "gpu": gpu, "full": full}[profile]
