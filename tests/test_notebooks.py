"""Every notebook runs top to bottom in the smoke profile, through the same runner users call, and comes out
as a reader should get it."""

import json
import re

import pytest

from resonance_lib.notebooks import find_notebooks, main, run_notebook

NOTEBOOKS = find_notebooks()


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


MACHINE_PATH = re.compile(r"/(tmp|work|root|home|Users)/[\w.\-]+/")


def reader_problems(executed: dict, figures_saved: int, allowed_path: str | None = None) -> list[str]:
    """What a reader opening an executed notebook would trip over: papermill's injected-parameters cell, a
    path of the machine that ran it, fewer inline images than the figures the run saved, no "What we found"
    section written by the run."""
    problems = []
    if any("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in executed["cells"]):
        problems.append("an injected-parameters cell")
    text = json.dumps(executed)
    if allowed_path:
        text = text.replace(json.dumps(allowed_path)[1:-1], "<FIG_DIR>")
    if MACHINE_PATH.search(text):
        problems.append(f"a machine path: {MACHINE_PATH.search(text).group(0)}…")
    images = sum("image/png" in o.get("data", {}) for c in executed["cells"] for o in c.get("outputs", []))
    if images < figures_saved:
        problems.append(f"{images} inline images for {figures_saved} saved figures")
    found = any("## What we found" in "".join(o.get("data", {}).get("text/markdown", ""))
                for c in executed["cells"] for o in c.get("outputs", []))
    if not found:
        problems.append("no computed 'What we found' section")
    return problems


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_profile_and_reads_clean(notebook, tmp_path, monkeypatch):
    monkeypatch.setenv("RESONANCE_CACHE_DIR", str(tmp_path / "runs"))  # train every run: nothing from a cache
    figures = tmp_path / "figures"
    result = run_notebook(notebook, "smoke", tmp_path / "out", figures, timeout=600)
    assert result.ok, f"{notebook.name} failed at {result.error}"
    saved = list(figures.glob("*.png"))
    assert saved, "the notebook saved no figure"
    executed = json.loads(result.output.read_text(encoding="utf-8"))
    assert not reader_problems(executed, len(saved), str(figures.resolve()))
    record = executed["metadata"]["resonance_run"]  # how busy the machine was, beside the wall-clock time
    assert record["cpu_seconds"] > 1.0 and record["cores"] >= 1 and "load_average_end" in record


def test_reader_problems_catches_each_defect():
    found = {"metadata": {}, "outputs": [{"data": {"text/markdown": "## What we found\n\n- …"}}], "source": ""}
    clean = {"cells": [{"metadata": {"tags": ["parameters"]}, "outputs": [], "source": "PROFILE = 'cpu'"},
                       {"metadata": {}, "outputs": [{"data": {"image/png": "..."}}], "source": ""}, found]}
    assert reader_problems(clean, 1) == []
    assert reader_problems({"cells": clean["cells"][:2]}, 1) == ["no computed 'What we found' section"]
    injected = {"cells": clean["cells"] + [{"metadata": {"tags": ["injected-parameters"]}, "outputs": []}]}
    assert reader_problems(injected, 1) == ["an injected-parameters cell"]
    pathy = {"cells": clean["cells"] + [{"metadata": {}, "outputs": [{"text": "/tmp/run-3/figures/x.png"}]}]}
    assert reader_problems(pathy, 1)[0].startswith("a machine path")
    assert reader_problems(clean, 2) == ["1 inline images for 2 saved figures"]


def test_runner_rejects_a_bad_profile(capsys):
    with pytest.raises(SystemExit):
        main(["--profile", "laptop"])
    assert "PROFILE='laptop'" in capsys.readouterr().err


def test_runner_rejects_an_unknown_notebook(capsys):
    with pytest.raises(SystemExit):
        main(["--profile", "smoke", "99_nothing"])
    assert "notebook '99_nothing' not found" in capsys.readouterr().err


def _tiny_notebook(path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("X = 1\nFIG_DIR = None", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import pathlib\npathlib.Path(FIG_DIR, f'{PROFILE}_{X}.txt').write_text('x')"),
                nbformat.v4.new_code_cell("assert X < 5, f'X={X}'")]
    nbformat.write(nb, path)
    return path


def test_plain_runner_sets_parameters_after_the_parameters_cell(tmp_path):
    from resonance_lib.notebooks import run_plain

    notebook = _tiny_notebook(tmp_path / "01_tiny.ipynb")
    assert run_plain(notebook, "quick", tmp_path, {"X": 3}).ok
    assert (tmp_path / "quick_3.txt").exists()
    failed = run_plain(notebook, "quick", tmp_path, {"X": 7})
    assert not failed.ok and "code cell 2: AssertionError: X=7" in failed.error


def test_param_must_be_a_literal(capsys):
    with pytest.raises(SystemExit):
        main(["--profile", "smoke", "--param", "SEEDS=[0,", "01"])
    assert "--param SEEDS" in capsys.readouterr().err


def test_fold_parameters_writes_the_run_into_the_parameters_cell(tmp_path):
    import nbformat

    from resonance_lib.notebooks import fold_parameters

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('PROFILE = "cpu"  # which profile\nSEEDS = None\nX = 1',
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('# Parameters\nPROFILE = "smoke"', metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("print(PROFILE)")]
    nb.metadata["papermill"] = {"input_path": "/tmp/a/01_x.ipynb", "output_path": "/tmp/b/01_x.ipynb"}
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    fold_parameters(path, {"PROFILE": "smoke", "X": 1, "SEEDS": [0, 1], "NEW": 2.5})
    folded = json.loads(path.read_text())
    assert [c["metadata"].get("tags") for c in folded["cells"]] == [["parameters"], None]
    assert "".join(folded["cells"][0]["source"]) == (
        'PROFILE = "smoke"  # which profile\nSEEDS = [0, 1]\nX = 1\nNEW = 2.5')
    assert folded["metadata"]["papermill"] == {"input_path": "01_x.ipynb", "output_path": "01_x.ipynb"}
    assert "resonance_run" not in folded["metadata"]
    fold_parameters(path, {"PROFILE": "smoke"}, run_record={"cpu_seconds": 3.5})
    assert json.loads(path.read_text())["metadata"]["resonance_run"] == {"cpu_seconds": 3.5}


def test_a_run_starts_from_the_notebooks_own_parameter_values_not_the_last_runs(tmp_path):
    import nbformat

    from resonance_lib.notebooks import fold_parameters, fold_run, run_plain, unfold_run, unfolded_copy

    cell = 'PROFILE = "quick"  # which profile\nSECTIONS = None  # all of them\nX = 1'
    folded, replaced = fold_run(cell, {"PROFILE": "full", "SECTIONS": ["char"], "X": 1, "NEW": 2})
    assert folded == 'PROFILE = "full"  # which profile\nSECTIONS = [\'char\']  # all of them\nX = 1\nNEW = 2'
    assert unfold_run(folded, replaced) == cell
    # a committed notebook last executed with SECTIONS=["char"] in `full`
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(cell, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(f"open({str(tmp_path / 'seen.txt')!r}, 'w').write(repr((PROFILE, SECTIONS)))")]
    path = tmp_path / "05_x.ipynb"
    nbformat.write(nb, path)
    fold_parameters(path, {"PROFILE": "full", "SECTIONS": ["char"]})
    assert "SECTIONS = ['char']" in nbformat.read(path, 4).cells[0].source
    copy = unfolded_copy(path, tmp_path / "scratch")  # what run_notebook hands papermill
    assert copy != path and nbformat.read(copy, 4).cells[0].source == cell
    assert "SECTIONS = ['char']" in nbformat.read(path, 4).cells[0].source  # the committed file is untouched
    assert run_plain(path, "smoke", None).error is None
    assert (tmp_path / "seen.txt").read_text() == "('smoke', None)"  # the next run: its profile, every section
    plain = tmp_path / "01_y.ipynb"  # a notebook no run has folded into is run as it is
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"]})]),
                   plain)
    assert unfolded_copy(plain, tmp_path / "scratch") == plain


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_committed_notebook_reads_clean(notebook):
    """As a reader gets it on GitHub or in JupyterLab: no injected-parameters cell, no path of the machine that
    ran it, and an inline image for every figure a cell that ran saved."""
    executed = json.loads(notebook.read_text(encoding="utf-8"))
    profile = executed["metadata"]["papermill"]["parameters"]["PROFILE"]
    # the figures that run saved: the committed figures/ holds exactly the PNGs of the committed run's profile
    saved = len(list((notebook.parent.parent / "figures").glob(f"{notebook.stem[:2]}_*_{profile}.png")))
    assert saved, f"no figures/{notebook.stem[:2]}_*_{profile}.png: the figures of the committed run are missing"
    assert not reader_problems(executed, saved)


def test_a_cell_ending_in_save_figure_shows_no_machine_path(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from resonance_lib.plots import Stamp, save_figure

    saved = save_figure(plt.figure(), pd.DataFrame({"x": [1]}), "f", tmp_path, Stamp("smoke", "cpu", (0,), "abc"))
    assert saved.png.exists() and saved.csv.exists()
    assert not MACHINE_PATH.search(repr(saved)) and repr(saved) == "saved f.png and f.csv"
