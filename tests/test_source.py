import pytest

from resonance_lib.delta import DeltaResidual, apply_delta
from resonance_lib.source import show_source, source_lines


def test_whole_function_and_marked_lines():
    whole = source_lines(apply_delta)
    assert whole.startswith("def apply_delta(") and "return" in whole
    rule = source_lines(DeltaResidual.forward, "proj = (k * state)", "return state + k")
    assert rule.splitlines()[0].startswith("proj = (k * state)") and rule.splitlines()[-1].startswith("return state")
    assert source_lines(DeltaResidual.forward, "proj = (k * state)") == "proj = (k * state).sum(-1, keepdim=True)"


def test_a_marker_that_no_longer_occurs_fails_loudly():
    with pytest.raises(ValueError, match="start='no such line'.*the code changed"):
        source_lines(apply_delta, "no such line")
    with pytest.raises(ValueError, match="end='nowhere'"):
        source_lines(apply_delta, "def apply_delta", "nowhere")


def test_show_source_prints_outside_a_notebook(capsys):
    code = show_source(apply_delta, "proj =", "out =")
    assert "# resonance_lib.delta.apply_delta" in capsys.readouterr().out and "proj" in code
