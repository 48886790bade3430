"""Each notebook has a plain-text twin in jupytext's percent format (notebooks/NN_*.py), the file people edit
and review; this fails when a pair is out of sync (`jupytext --sync notebooks/*.ipynb` mends it)."""

import pytest

from resonance_lib.notebooks import colab_cell, find_notebooks, fold_source, repository_url

jupytext = pytest.importorskip("jupytext")
NOTEBOOKS = find_notebooks()


def cells(notebook, parameters: dict | None = None) -> list[tuple[str, str, list]]:
    """Each cell's type, source and tags; with ``parameters``, the ``parameters`` cell as the runner folds a
    headless run's values into it (``fold_source``)."""
    def source(c):
        if parameters and "parameters" in c.metadata.get("tags", []):
            return fold_source(c.source, parameters).strip()
        return c.source.strip()

    return [(c.cell_type, source(c), sorted(c.metadata.get("tags", []))) for c in notebook.cells]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_and_its_percent_source_hold_the_same_cells(notebook):
    source = notebook.with_suffix(".py")
    assert source.exists(), f"{source.name} missing: run jupytext --sync {notebook.name}"
    executed = jupytext.read(notebook)
    # a committed notebook executed headless (e.g. in the `full` profile) shows its run's values in its
    # parameters cell, recorded in papermill's metadata: the source with those values folded in is what it holds
    ran_with = executed.metadata.get("papermill", {}).get("parameters", {})
    assert cells(executed) == cells(jupytext.read(source, fmt="py:percent"), ran_with), (
        f"{notebook.name} and {source.name} differ: edit the .py, then run jupytext --sync notebooks/*.ipynb")


def test_a_changed_source_is_caught(tmp_path):
    notebook = NOTEBOOKS[0]
    text = notebook.with_suffix(".py").read_text(encoding="utf-8").replace('PROFILE = "quick"', 'PROFILE = "gpu"', 1)
    edited = tmp_path / "edited.py"
    edited.write_text(text, encoding="utf-8")
    assert cells(jupytext.read(notebook)) != cells(jupytext.read(edited, fmt="py:percent"))


def test_a_full_run_s_values_are_folded_in_and_nothing_else_is_forgiven(tmp_path):
    source = jupytext.read(NOTEBOOKS[-1].with_suffix(".py"), fmt="py:percent")
    parameters = next(c for c in source.cells if "parameters" in c.metadata.get("tags", []))
    ran_with = {"PROFILE": "full", "SECTIONS": ["nanogpt", "char"]}
    folded = fold_source(parameters.source, ran_with)
    assert 'PROFILE = "full"' in folded and "SECTIONS = ['nanogpt', 'char']" in folded
    executed = jupytext.read(NOTEBOOKS[-1].with_suffix(".py"), fmt="py:percent")
    executed_parameters = next(c for c in executed.cells if "parameters" in c.metadata.get("tags", []))
    executed_parameters.source = folded
    assert cells(executed) != cells(source)  # the executed cell holds the run's values ...
    assert cells(executed) == cells(source, ran_with)  # ... which folding the run's values into the source gives
    executed_parameters.source = folded.replace('DEVICE = "auto"', 'DEVICE = "cpu"')
    assert cells(executed) != cells(source, ran_with)  # any other difference is still a difference


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_first_code_cell_is_the_colab_set_up_from_the_one_template(notebook):
    first = next(c for c in jupytext.read(notebook).cells if c.cell_type == "code")
    assert first.source == colab_cell(), f"{notebook.name}: replace its first code cell with colab_cell()"


def test_the_colab_cell_clones_the_repository_of_pyproject_and_does_nothing_elsewhere():
    cell = colab_cell()
    assert f'REPO_URL = "{repository_url()}"' in cell and repository_url().startswith("https://github.com/")
    scope = {}
    exec(compile(cell, "colab", "exec"), scope)  # not in Colab: no clone, no install, nothing printed
    assert "REPO_URL" not in scope
