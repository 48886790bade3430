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


# The smoke profile scores its language models on the first this-many tokens of the validation and test splits:
# CI checks that a notebook runs, not its numbers, and scoring tinyshakespeare's whole splits (111k + 56k
# characters) was most of a smoke run's time (3.2× a run's time at the char level, 1.4× at the word level).
SMOKE_EVAL_TOKENS = 8192


def eval_tokens(profile: str) -> int | None:
    """How many validation and test tokens a profile scores on: ``SMOKE_EVAL_TOKENS`` in ``smoke``, the whole splits
    (None) in every other profile."""
    return pick(profile, smoke=SMOKE_EVAL_TOKENS, quick=None, full=None, gpu=None)


def shorten_eval_splits(data, tokens: int | None):
    """``data`` (a ``data.TokenData``) with its validation and test streams cut to their first ``tokens`` tokens;
    ``data`` itself when ``tokens`` is None. The training stream and the tokenizer are untouched."""
    from .checks import check_int
    from .data import TokenData  # the data module imports torch; keep this module light

    if tokens is None:
        return data
    check_int("tokens", tokens, low=2)  # a window needs an input and its target
    return TokenData(data.train, data.val[:tokens], data.tokenizer, data.test[:tokens])
