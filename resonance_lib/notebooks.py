"""Execute the notebooks headless with papermill: ``python -m resonance_lib.notebooks --profile smoke``.

One line per notebook (time, ok/FAILED); on failure the notebook, the cell and the error. ``cpu`` and
``gpu`` runs write the executed notebooks in place and their figures to ``figures/``; a ``smoke`` run
writes both to a temporary directory, so it never overwrites committed results. A notebook is replaced only
by a run in which every cell succeeded; a failed run's executed copy is kept in a temporary folder.

``--plain`` runs the code cells in this Python process instead, without Jupyter (for a machine that has
PyTorch but no papermill or kernel, such as a bare GPU box): it writes the figures and CSVs, not an executed
notebook. ``--param NAME=VALUE`` (a Python literal) sets a parameter, e.g. ``--param 'SECTIONS=["char"]'``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .data import PACKAGE_ROOT
from .profiles import PROFILES, check_profile
from .session import default_fig_dir

NOTEBOOK_DIR = PACKAGE_ROOT / "notebooks"

# The first code cell of every notebook, generated from this template with the repository URL of
# pyproject.toml ([project.urls] Repository), the one place the URL is written; tests/test_notebook_sources.py
# fails when a notebook's cell differs (``colab_cell()`` returns the cell).
COLAB_CELL_TEMPLATE = """\
# Colab set-up: in Google Colab, clone the repository and install resonance_lib; elsewhere this does nothing.
import sys

if "google.colab" in sys.modules:
    import pathlib
    import subprocess

    REPO_URL = "{url}"
    CLONE = pathlib.Path("/content") / REPO_URL.rstrip("/").split("/")[-1]
    if not CLONE.exists():
        subprocess.run(["git", "clone", "-q", REPO_URL, str(CLONE)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--root-user-action=ignore", "-e", str(CLONE)],
                   check=True)
    sys.path.insert(0, str(CLONE))"""


def repository_url() -> str:
    """The repository URL, read from pyproject.toml's [project.urls] Repository."""
    import re

    found = re.search(r'^Repository = "([^"]+)"', (PACKAGE_ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    if found is None:
        raise ValueError("pyproject.toml has no [project.urls] Repository = \"...\" line")
    return found.group(1)


def colab_cell() -> str:
    """The Colab set-up cell every notebook starts with."""
    return COLAB_CELL_TEMPLATE.format(url=repository_url())


@dataclass
class NotebookResult:
    notebook: Path
    output: Path
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def find_notebooks(names: list[str] | None = None, notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """All ``NN_*.ipynb`` in order, or those whose file name starts with one of ``names`` ("01", "01_delta…")."""
    available = sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return available
    chosen = []
    for name in names:
        hits = [p for p in available if p.name.startswith(name) or p.stem == name]
        if not hits:
            raise ValueError(f"notebook {name!r} not found in {notebook_dir}; available: {[p.name for p in available]}")
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def _absolute_data_dirs() -> None:
    """Notebooks run inside notebooks/: make relative corpus directories absolute before they are used there."""
    if os.environ.get("RESONANCE_DATA_DIR"):
        os.environ["RESONANCE_DATA_DIR"] = ":".join(
            str(Path(d).resolve()) for d in os.environ["RESONANCE_DATA_DIR"].split(":") if d)


def _notebook_parameters(profile: str, fig_dir: Path | None, parameters: dict | None) -> dict:
    """What a run injects: PROFILE, FIG_DIR only when it is not the repository's figures/ (the notebooks'
    default, so a committed notebook names no machine path), then the caller's parameters."""
    injected = {"PROFILE": profile}
    if fig_dir is not None and Path(fig_dir).resolve() != default_fig_dir().resolve():
        injected["FIG_DIR"] = str(Path(fig_dir).resolve())
    return {**injected, **(parameters or {})}


def _children_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process's finished children — the kernel and the grid workers it
    waited for — so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load_average() -> float | None:
    """The 1-minute load average: how busy the machine was with other work around a timed run."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _one_line_assignments(source: str) -> dict[str, int]:
    """{name: line index} of the one-line ``NAME = value`` statements of a cell."""
    import ast

    return {node.targets[0].id: node.lineno - 1 for node in ast.parse(source).body
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            and node.lineno == node.end_lineno}


def fold_run(source: str, parameters: dict) -> tuple[str, dict[str, str | None]]:
    """A ``parameters`` cell's source with ``parameters`` written into it — each one-line assignment of a named
    parameter takes the run's value (its own spelling kept where the value is the same), parameters the cell
    does not assign are appended as ``NAME = value`` lines — and what it replaced: ``{name: the original line,
    or None for an appended one}``, so that ``unfold_run`` can give the cell its own values back."""
    import ast

    lines = source.split("\n")
    at = _one_line_assignments(source)
    replaced: dict[str, str | None] = {}
    for name, index in at.items():
        if name not in parameters:
            continue
        value = ast.parse(lines[index]).body[0].value
        try:
            unchanged = ast.literal_eval(value) == parameters[name]
        except ValueError:
            unchanged = False
        if not unchanged:  # a value the run changed; the cell's own spelling is kept otherwise
            replaced[name] = lines[index]
            lines[index] = lines[index][:value.col_offset] + _literal(parameters[name]) + lines[index][value.end_col_offset:]
    for name, value in parameters.items():
        if name not in at:
            replaced[name] = None
            lines.append(f"{name} = {_literal(value)}")
    return "\n".join(lines), replaced


def fold_source(source: str, parameters: dict) -> str:
    """``fold_run``'s cell alone: what a headless run with ``parameters`` leaves in the ``parameters`` cell."""
    return fold_run(source, parameters)[0]


def unfold_run(source: str, replaced: dict[str, str | None]) -> str:
    """Undo ``fold_run``: each line a run replaced gets its original back, each line it appended goes. A run
    starts from the notebook's own values, not from the last run's (a committed notebook executed with
    ``SECTIONS=["char"]`` must not hand that to the next run)."""
    lines = source.split("\n")
    at = _one_line_assignments(source)
    drop = set()
    for name, original in replaced.items():
        if name not in at:
            continue  # edited away since: nothing to give back
        if original is None:
            drop.add(at[name])
        else:
            lines[at[name]] = original
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


def _parameters_cell(cells: list[dict]) -> dict | None:
    return next((c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)


def fold_parameters(path: Path, parameters: dict, run_record: dict | None = None) -> None:
    """Make an executed notebook clean to re-run: write the injected values into the ``parameters`` cell
    itself (``fold_run``: so it shows what the run used, and a reader's edit there takes effect), remember what
    they replaced (``resonance_parameters`` metadata, for ``unfold_run``), drop papermill's
    ``injected-parameters`` cell, and keep only the notebook's own name in papermill's metadata.
    ``run_record`` (CPU seconds, cores, load average around the run) goes to the ``resonance_run`` metadata:
    papermill's wall-clock duration alone cannot tell a slow notebook from a busy machine."""
    import json

    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    cell = _parameters_cell(cells)
    if cell is not None:
        source, replaced = fold_run("".join(cell["source"]), parameters)
        cell["source"] = source.splitlines(keepends=True)
        nb.setdefault("metadata", {})["resonance_parameters"] = {"replaced": replaced}
    nb["cells"] = cells
    meta = nb.get("metadata", {}).get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = Path(meta[key]).name
    if run_record is not None:
        nb.setdefault("metadata", {})["resonance_run"] = run_record
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def unfolded_copy(notebook: Path, folder: Path) -> Path:
    """``notebook`` as a run should start from it: a copy in ``folder`` whose ``parameters`` cell has its own
    values back (``unfold_run`` with the replacements its last headless run recorded); ``notebook`` itself when
    it records none."""
    import json

    nb = json.loads(notebook.read_text(encoding="utf-8"))
    replaced = nb.get("metadata", {}).get("resonance_parameters", {}).get("replaced")
    cell = _parameters_cell(nb["cells"])
    if not replaced or cell is None:
        return notebook
    cell["source"] = unfold_run("".join(cell["source"]), replaced).splitlines(keepends=True)
    del nb["metadata"]["resonance_parameters"]
    copy = Path(folder) / "input" / notebook.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return copy


def _literal(value) -> str:
    """A Python literal for ``value``, strings in double quotes as the notebooks write them."""
    import json

    return json.dumps(value) if isinstance(value, str) else repr(value)


def _replace_atomically(source: Path, dest: Path) -> None:
    """Copy ``source`` over ``dest`` so that ``dest`` is at every moment either the old or the new file."""
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp", delete=False) as tmp:
        pass
    try:
        shutil.copyfile(source, tmp.name)
        os.replace(tmp.name, dest)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise


def run_notebook(notebook: Path, profile: str, output_dir: Path, fig_dir: Path | None, timeout: int | None,
                 parameters: dict | None = None) -> NotebookResult:
    """Execute one notebook with kernel ``python3`` in its own folder, injecting PROFILE (and FIG_DIR unless it
    is the repository's figures/); the executed copy carries those values in its ``parameters`` cell.

    The run writes into a scratch folder; ``output_dir/<name>`` (the committed notebook, for an in-place run)
    is replaced only when every cell succeeded. A failed run's executed copy stays in the scratch folder
    (``NotebookResult.output``); an interrupted run (Ctrl-C) leaves the notebook as it was."""
    import papermill as pm  # heavy import, only when running notebooks

    Path(output_dir).mkdir(parents=True, exist_ok=True)
    output = Path(output_dir) / notebook.name
    scratch = Path(tempfile.mkdtemp(prefix="resonance-run-")) / notebook.name
    _absolute_data_dirs()
    params = _notebook_parameters(profile, fig_dir, parameters)
    start, cpu_start, load_start = time.perf_counter(), _children_cpu_seconds(), _load_average()
    error = None
    source = unfolded_copy(notebook, scratch.parent)  # the notebook's own parameter values, not its last run's
    try:
        pm.execute_notebook(str(source), str(scratch), parameters=params, kernel_name="python3",
                            cwd=str(notebook.parent), execution_timeout=timeout, progress_bar=False)
    except pm.PapermillExecutionError as exc:
        error = f"cell {exc.exec_count} (index {exc.cell_index}): {exc.ename}: {exc.evalue}"
    except Exception as exc:  # noqa: BLE001 - kernel death, timeouts: reported, never hidden
        error = f"{type(exc).__name__}: {exc}"
    if error is not None:
        return NotebookResult(notebook, scratch, time.perf_counter() - start, error)
    fold_parameters(scratch, params, run_record={
        "cpu_seconds": round(_children_cpu_seconds() - cpu_start, 1), "cores": os.cpu_count(),
        "load_average_start": load_start, "load_average_end": _load_average()})
    _replace_atomically(scratch, output)
    shutil.rmtree(scratch.parent, ignore_errors=True)
    return NotebookResult(notebook, output, time.perf_counter() - start, error)


def run_plain(notebook: Path, profile: str, fig_dir: Path | None, parameters: dict | None = None) -> NotebookResult:
    """Execute the notebook's code cells in order in one fresh namespace, in its folder; the parameters are
    set right after the cell tagged ``parameters``, as papermill would."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    replaced = nb.get("metadata", {}).get("resonance_parameters", {}).get("replaced")
    params = _notebook_parameters(profile, fig_dir, parameters)
    namespace: dict = {"__name__": "__main__"}
    _absolute_data_dirs()
    start, error, cwd = time.perf_counter(), None, os.getcwd()
    os.chdir(notebook.parent)
    try:
        for index, cell in enumerate(cells):
            tags = cell.get("metadata", {}).get("tags", [])
            if "injected-parameters" in tags:
                continue  # a previous papermill run's values: ours follow the parameters cell
            source = "".join(cell["source"])
            if "parameters" in tags and replaced:
                source = unfold_run(source, replaced)  # the notebook's own values, then this run's
            try:
                exec(compile(source, f"{notebook.name}[code cell {index}]", "exec"), namespace)  # noqa: S102
            except Exception as exc:  # noqa: BLE001 - reported with the cell, never hidden
                error = f"code cell {index}: {type(exc).__name__}: {exc}"
                import traceback

                traceback.print_exc()
                break
            if "parameters" in tags:
                namespace.update(params)
    finally:
        os.chdir(cwd)
    return NotebookResult(notebook, notebook, time.perf_counter() - start, error)


def _parameter(text: str) -> tuple[str, object]:
    import ast

    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"--param {text!r}: expected NAME=VALUE, e.g. SEEDS=[0,1]")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError) as exc:
        raise argparse.ArgumentTypeError(f"--param {name}: {value!r} is not a Python literal") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resonance_lib.notebooks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (prefix such as 01); default: all")
    parser.add_argument("--profile", default="quick", help=f"one of {PROFILES} (default quick)")
    parser.add_argument("--output-dir", type=Path, help="executed notebooks (default: in place; smoke: a temp dir)")
    parser.add_argument("--fig-dir", type=Path, help="figures and CSVs (default: figures/; smoke: a temp dir)")
    parser.add_argument("--timeout", type=int, default=None, help="seconds per cell (default 600 smoke, none in full, 7200 else)")
    parser.add_argument("--plain", action="store_true", help="run the code cells in this process, without Jupyter")
    parser.add_argument("--param", type=_parameter, action="append", default=[], metavar="NAME=VALUE",
                        help="set a notebook parameter (a Python literal); repeatable")
    args = parser.parse_args(argv)
    for name, option in (("PROFILE", "--profile"), ("FIG_DIR", "--fig-dir")):
        if name in dict(args.param):
            parser.error(f"--param {name}=...: set it with {option}, which the runner also uses for its own "
                         "choices (output folders, timeouts)")
    try:
        profile = check_profile(args.profile)
        notebooks = find_notebooks(args.names)
    except ValueError as exc:
        parser.error(str(exc))
    if not notebooks:
        parser.error(f"no notebooks found in {NOTEBOOK_DIR}")
    scratch = Path(tempfile.mkdtemp(prefix="resonance-smoke-")) if profile == "smoke" else None
    output_dir = args.output_dir or (scratch / "notebooks" if scratch else NOTEBOOK_DIR)
    fig_dir = args.fig_dir or (scratch / "figures" if scratch else default_fig_dir())
    output_dir.mkdir(parents=True, exist_ok=True)
    timeout = args.timeout or {"smoke": 600, "full": None}.get(profile, 7200)  # full: hours in one cell
    print(f"profile={profile} notebooks -> {output_dir} figures -> {fig_dir}", flush=True)
    results = []
    for notebook in notebooks:
        if args.plain:
            result = run_plain(notebook, profile, fig_dir, dict(args.param))
        else:
            result = run_notebook(notebook, profile, output_dir, fig_dir, timeout, dict(args.param))
        status = "ok" if result.ok else "FAILED"
        print(f"{result.seconds:8.1f}s  {status:6s}  {notebook.name}", flush=True)
        if not result.ok:
            print(f"          {notebook.name}, {result.error}\n          executed copy: {result.output}", flush=True)
        results.append(result)
    failed = [r for r in results if not r.ok]
    print(f"notebooks: {len(results) - len(failed)} ok, {len(failed)} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
