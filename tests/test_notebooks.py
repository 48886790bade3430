"""Every notebook runs top to bottom in the smoke profile, through the same runner users call."""

import pytest

from resonance_lib.notebooks import find_notebooks, main, run_notebook

NOTEBOOKS = find_notebooks()


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_profile(notebook, tmp_path):
    result = run_notebook(notebook, "smoke", tmp_path / "out", tmp_path / "figures", timeout=600)
    assert result.ok, f"{notebook.name} failed at {result.error}"
    assert list((tmp_path / "figures").glob("*.png")), "the notebook saved no figure"


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
    assert run_plain(notebook, "cpu", tmp_path, {"X": 3}).ok
    assert (tmp_path / "cpu_3.txt").exists()
    failed = run_plain(notebook, "cpu", tmp_path, {"X": 7})
    assert not failed.ok and "code cell 2: AssertionError: X=7" in failed.error


def test_param_must_be_a_literal(capsys):
    with pytest.raises(SystemExit):
        main(["--profile", "smoke", "--param", "SEEDS=[0,", "01"])
    assert "--param SEEDS" in capsys.readouterr().err
