"""Each notebook has a plain-text twin in jupytext's percent format (notebooks/NN_*.py), the file people edit
and review; this fails when a pair is out of sync (`jupytext --sync notebooks/*.ipynb` mends it)."""

import pytest

from resonance_lib.notebooks import colab_cell, find_notebooks, repository_url

jupytext = pytest.importorskip("jupytext")
NOTEBOOKS = find_notebooks()


def cells(notebook) -> list[tuple[str, str, list]]:
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in notebook.cells]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_and_its_percent_source_hold_the_same_cells(notebook):
    source = notebook.with_suffix(".py")
    assert source.exists(), f"{source.name} missing: run jupytext --sync {notebook.name}"
    assert cells(jupytext.read(notebook)) == cells(jupytext.read(source, fmt="py:percent")), (
        f"{notebook.name} and {source.name} differ: edit the .py, then run jupytext --sync notebooks/*.ipynb")


def test_a_changed_source_is_caught(tmp_path):
    notebook = NOTEBOOKS[0]
    text = notebook.with_suffix(".py").read_text(encoding="utf-8").replace('PROFILE = "quick"', 'PROFILE = "gpu"', 1)
    edited = tmp_path / "edited.py"
    edited.write_text(text, encoding="utf-8")
    assert cells(jupytext.read(notebook)) != cells(jupytext.read(edited, fmt="py:percent"))


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
