"""Run profiles shared by every notebook: ``smoke`` (CI, seconds), ``cpu`` (a laptop, minutes),
``gpu`` (the real experiments). Profiles change sizes and steps, never code paths."""

from __future__ import annotations

from typing import TypeVar

PROFILES = ("smoke", "cpu", "gpu")

T = TypeVar("T")


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"PROFILE={profile!r} is not a profile; allowed: {list(PROFILES)}")
    return profile


def pick(profile: str, *, smoke: T, cpu: T, gpu: T) -> T:
    """The value for ``profile``: ``pick(PROFILE, smoke=20, cpu=2000, gpu=5000)``."""
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[check_profile(profile)]
