"""CI smoke test of bench/papers/seed000.py (Bertalan et al., transformations between networks).

At the tiny size, experiment 4.2 (two 1-3-1 networks on different input domains) must show the
paper's qualitative claims: with intrinsic bursts the two Mahalanobis embeddings agree, the map
between the hidden layers (3 = 2d + 1 neurons) works, and the map between the outputs alone (a
non-monotone function folds the input) fails. The full run's figures are in
bench/notes/papers-seed000.md.
"""

import pathlib
import sys

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
from papers import seed000  # noqa: E402


def _value(rows, fragment):
    (hit,) = [r["ours"] for r in rows if fragment in r["quantity"]]
    return hit


@pytest.fixture(scope="module")
def rows_42():
    return seed000.run("smoke", 0, only=("4.2",))


def test_rows_have_the_runner_format(rows_42):
    assert rows_42 and all(set(r) == {"experiment", "quantity", "ours", "published", "note"} for r in rows_42)
    assert all(r["experiment"].startswith("4.2") for r in rows_42)


def test_hidden_neurons_map_works_and_outputs_only_map_fails(rows_42):
    assert _value(rows_42, "Mahalanobis, intrinsic bursts") > 0.99
    hidden = _value(rows_42, "A's hidden layer -> B's hidden layer")
    outputs_only = _value(rows_42, "A's output only -> B's output")
    assert hidden < 0.1
    assert outputs_only > 0.5 and outputs_only > 5 * hidden
    # S (B's input) recovered from A's neurons within a small part of D2 = [2, 4]
    assert _value(rows_42, "S recovered") < 0.3


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="size"):
        seed000.run("huge")
    with pytest.raises(ValueError, match="seed"):
        seed000.run("smoke", -1)
    with pytest.raises(TypeError, match="seed"):
        seed000.run("smoke", 1.5)
    with pytest.raises(ValueError, match="only"):
        seed000.run("smoke", 0, only=("4.9",))
