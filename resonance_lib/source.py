"""Show the library lines that implement an equation, read from the library itself so they never drift.

    show_source(DeltaResidual.forward)                                  # the whole method
    show_source(DeltaResidual.forward, "proj = (k * state)", "return state + k")   # from one line to another

Lines are chosen by a piece of their text, not by number: when the code changes so that a marker no longer
occurs, ``source_lines`` raises and the notebook fails in CI's smoke run, instead of showing stale lines.
"""

from __future__ import annotations

import inspect
import textwrap


def source_lines(obj, start: str | None = None, end: str | None = None) -> str:
    """The source of ``obj`` (a function, method or class of the library), dedented; or only the lines from
    the first that contains ``start`` through the first after it that contains ``end`` (``end`` None: that
    one line)."""
    lines = textwrap.dedent(inspect.getsource(obj)).splitlines()
    name = getattr(obj, "__qualname__", repr(obj))
    if start is None:
        return "\n".join(lines)
    first = next((i for i, line in enumerate(lines) if start in line), None)
    if first is None:
        raise ValueError(f"no line of {name} contains start={start!r}: the code changed; update the marker")
    if end is None:
        return lines[first].strip()
    last = next((i for i in range(first, len(lines)) if end in lines[i]), None)
    if last is None:
        raise ValueError(f"no line of {name} after {start!r} contains end={end!r}: the code changed; update the marker")
    return textwrap.dedent("\n".join(lines[first:last + 1]))


def show_source(obj, start: str | None = None, end: str | None = None) -> str:
    """Display ``source_lines(obj, start, end)`` as a Python code block titled with where it lives (Markdown in
    a notebook, plain text elsewhere); returns the code."""
    code = source_lines(obj, start, end)
    where = f"{obj.__module__}.{getattr(obj, '__qualname__', '')}"
    from .session import in_kernel

    if in_kernel():
        from IPython.display import Markdown, display

        display(Markdown(f"`{where}`\n```python\n{code}\n```"))
    else:
        print(f"# {where}\n{code}")
    return code
