"""The latentbridge command line."""

import importlib.util
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from latentbridge.cli import main
from latentbridge.measures import registry


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "cuda_status" in out and "cpu_simd" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: latentbridge" in capsys.readouterr().out


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "latentbridge", "info"], capture_output=True, text=True)
    assert out.returncode == 0 and "latentbridge" in out.stdout


# --- compare --layers A.npz B.npz, measures ---------------------------------------------------------------


def linear_cka_oracle(X, Y):
    """Linear CKA's closed form, written out independently of the library."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    return np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))


@pytest.fixture()
def archives(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 4))
    layers_a = {"conv": rng.standard_normal((50, 2, 3, 3)), "fc": x}
    layers_b = {"l1": x @ rng.standard_normal((4, 5)), "l2": rng.standard_normal((50, 3)),
                "l3": np.tanh(x[:, :2])}
    np.savez(tmp_path / "a.npz", **layers_a)
    np.savez(tmp_path / "b.npz", **layers_b)
    flat = {k: v.reshape(50, -1) for k, v in {**layers_a, **layers_b}.items()}
    return tmp_path / "a.npz", tmp_path / "b.npz", flat


def test_compare_layers_json_is_the_labelled_layer_by_layer_matrix(archives, capsys):
    a, b, flat = archives
    assert main(["compare", "--layers", str(a), str(b), "--metrics", "cka,procrustes_distance", "--json",
                 "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["names"] == ["conv", "fc"] and out["columns"] == ["l1", "l2", "l3"] and out["errors"] == []
    assert out["info"]["n_samples"] == 50
    table = registry()
    for i, row in enumerate(out["names"]):
        for j, col in enumerate(out["columns"]):
            assert out["metrics"]["cka"][i][j] == pytest.approx(linear_cka_oracle(flat[row], flat[col]), rel=1e-9)
            expected = table["procrustes_distance"].func(flat[row], flat[col])
            assert out["metrics"]["procrustes_distance"][i][j] == pytest.approx(expected, rel=1e-12)


def test_compare_layers_out_writes_result_json_and_heatmaps(archives, capsys, tmp_path):
    from latentbridge.compare import ComparisonResult

    a, b, flat = archives
    out_dir = tmp_path / "report"
    assert main(["compare", "--layers", str(a), str(b), "--out", str(out_dir), "--no-progress"]) == 0
    saved = ComparisonResult.load(out_dir / "comparison.npz")
    assert saved.names == ["conv", "fc"] and saved.columns == ["l1", "l2", "l3"] and saved.metrics == ["cka"]
    assert saved["cka"][1, 0] == pytest.approx(linear_cka_oracle(flat["fc"], flat["l1"]), rel=1e-9)
    as_json = json.loads((out_dir / "comparison.json").read_text())
    np.testing.assert_allclose(as_json["metrics"]["cka"], saved["cka"], rtol=1e-15)
    if importlib.util.find_spec("matplotlib"):
        assert (out_dir / "cka.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().err


def test_compare_layers_reports_failed_pairs_and_keeps_the_rest(archives, tmp_path, capsys):
    a, _, flat = archives
    np.savez(tmp_path / "dead.npz", alive=flat["l2"], dead=np.ones((50, 3)))
    assert main(["compare", "--layers", str(a), str(tmp_path / "dead.npz"), "--json", "--no-progress"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert [e[:3] for e in out["errors"]] == [["conv", "dead", "cka"], ["fc", "dead", "cka"]]
    assert [row[1] for row in out["metrics"]["cka"]] == [None, None]
    assert out["metrics"]["cka"][1][0] == pytest.approx(linear_cka_oracle(flat["fc"], flat["l2"]), rel=1e-9)
    err_lines = captured.err.strip().splitlines()
    assert len(err_lines) == 2 and all("cka(" in line and "constant" in line for line in err_lines)


@pytest.mark.parametrize("case, message", [
    ("rows_between", "the archives must hold the same samples: .* 50 rows, .* 49"),
    ("rows_within", "layers have different numbers of rows \\(samples\\): p: 50, q: 49"),
    ("empty", "holds no layers"),
    ("missing", "no such file"),
    ("not_npz", "reads .npz archives"),
    ("unknown_measure", "unknown measure\\(s\\) \\['cak'\\]; choose from cka,"),
    ("both_forms", "not both"),
])
def test_compare_layers_bad_input_exits_1_with_one_line(archives, tmp_path, capsys, case, message):
    a, b, flat = archives
    np.savez(tmp_path / "short.npz", x=flat["fc"][:49])
    np.savez(tmp_path / "ragged.npz", p=flat["fc"], q=flat["fc"][:49])
    np.savez(tmp_path / "empty.npz")
    np.save(tmp_path / "plain.npy", flat["fc"])
    argv = {"rows_between": ["--layers", str(a), str(tmp_path / "short.npz")],
            "rows_within": ["--layers", str(a), str(tmp_path / "ragged.npz")],
            "empty": ["--layers", str(tmp_path / "empty.npz"), str(b)],
            "missing": ["--layers", str(a), str(tmp_path / "nope.npz")],
            "not_npz": ["--layers", str(a), str(tmp_path / "plain.npy")],
            "unknown_measure": ["--layers", str(a), str(b), "--metrics", "cak"],
            "both_forms": [str(a), "--layers", str(a), str(b)]}[case]
    assert main(["compare", *argv, "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latentbridge compare: error: ")
    assert re.search(message, lines[0]), lines[0]


def test_compare_bad_input_has_no_traceback_from_the_entry_point(archives, tmp_path):
    a, _, flat = archives
    np.savez(tmp_path / "short.npz", x=flat["fc"][:49])
    out = subprocess.run([sys.executable, "-m", "latentbridge", "compare", "--layers", str(a),
                          str(tmp_path / "short.npz")], capture_output=True, text=True)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        f"latentbridge compare: error: the archives must hold the same samples: {a} has 50 rows, "
        f"{tmp_path / 'short.npz'} has 49"]


def test_compare_help_lists_the_registered_measures(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in registry():
        assert name in text


def test_measures_table_and_json_match_the_registry(capsys):
    table = registry()
    assert main(["measures"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["name", "kind"]
    assert [line.split()[0] for line in lines[1:]] == list(table)
    ensd = next(line.split() for line in lines if line.startswith("ensd "))
    assert ensd[1:3] == ["similarity", "depends"]
    assert main(["measures", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(table)
    for r in rows:
        info = table[r["name"]]
        assert (r["kind"], r["identical_value"], r["symmetric"], r["metric"]) == \
            (info.kind, info.identical_value, info.symmetric, info.metric)
        assert set(r["invariances"]) == set(info.invariances)
        assert r["function"].rsplit(".", 1)[1] == info.func.__qualname__
