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
