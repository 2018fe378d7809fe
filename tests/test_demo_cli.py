"""The demo end to end at a reduced size, and the compare/align commands on temporary files."""

import json

import numpy as np
import pytest

from latentbridge.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    pytest.importorskip("sklearn")
    from latentbridge.demo import run_demo

    out = tmp_path_factory.mktemp("report")
    import io

    text = io.StringIO()
    summary = run_demo(out, quick=True, progress=False, stream=text)
    return out, summary, text.getvalue()


def test_demo_report(demo):
    out, summary, text = demo
    assert (out / "report.html").stat().st_size > 500
    assert json.loads((out / "summary.json").read_text())["pair"] == summary["pair"]
    if pytest.importorskip("matplotlib"):
        for png in ("barcode.png", "embeddings.png", "similarity.png"):
            assert (out / png).stat().st_size > 5000
    assert "linear CKA" in text and "Alignment on 200 anchors" in text


def test_demo_findings(demo):
    _, s, _ = demo
    # the two networks resemble each other far more than when the correspondence is destroyed
    assert s["cka_pair"] > 0.5 > s["cka_vs_shuffled"]
    assert s["rtd_pair"] < s["rtd_vs_shuffled"]
    # the analytic classifier map reproduces the source network's accuracy exactly
    assert s["alignment"]["analytic (classifiers)"]["stitched_accuracy"] == pytest.approx(s["accuracy_a"], abs=0)
    # a linear map transfers better than a rigid one (Lähner & Moeller)
    assert s["alignment"]["linear"]["relative_error"] < s["alignment"]["rigid (orthogonal)"]["relative_error"]
    # relative representations make same-architecture networks retrievable across seeds
    same = [row for label, row in s["mrr"].items() if label.endswith("relu-s1")][0]
    assert same["relative (cosine)"] > 5 * same["absolute"]
    # Mahalanobis diffusion maps recover the intrinsic coordinates better than Euclidean ones
    for name in ("relu-s0", "relu-s1"):
        row = s["dmaps_agreement"][name]
        assert row["mahalanobis"] > max(row["euclidean"], 0.95)


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((150, 12))
    B = A @ rng.standard_normal((12, 9)) + 0.01 * rng.standard_normal((150, 9))
    paths = {"A": tmp_path / "a.npy", "B": tmp_path / "b.npz", "short": tmp_path / "short.npy",
             "multi": tmp_path / "multi.npz"}
    np.save(paths["A"], A)
    np.savez(paths["B"], feats=B)
    np.save(paths["short"], A[:100])
    np.savez(paths["multi"], x=A, y=B)
    return paths, A, B


def test_compare_json(files, capsys):
    paths, A, B = files
    assert main(["compare", str(paths["A"]), str(paths["B"]), "--metrics", "cka,svcca", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    Ac, Bc = A - A.mean(0), B - B.mean(0)
    oracle = np.linalg.norm(Bc.T @ Ac) ** 2 / (np.linalg.norm(Ac.T @ Ac) * np.linalg.norm(Bc.T @ Bc))
    assert out["cka"] == pytest.approx(oracle, rel=1e-9)
    assert out["n_samples"] == 150 and 0 < out["svcca"] <= 1


def test_compare_errors(files, capsys):
    paths, _, _ = files
    assert main(["compare", str(paths["A"]), str(paths["short"])]) == 1
    assert "same rows" in capsys.readouterr().err
    assert main(["compare", str(paths["A"]), str(paths["A"].with_name("missing.npy"))]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["compare", str(paths["A"]), str(paths["multi"])]) == 1
    assert "--key" in capsys.readouterr().err
    assert main(["compare", str(paths["A"]), str(paths["multi"]), "--key-b", "x", "--metrics", "cka"]) == 0
    capsys.readouterr()
    bad = paths["A"].with_name("bad.npy")
    bad.write_bytes(b"not a numpy file")
    assert main(["compare", str(bad), str(paths["A"])]) == 1
    assert "could not read" in capsys.readouterr().err
    assert main(["compare", str(paths["A"]), str(paths["B"]), "--metrics", "cka,nope"]) == 1  # an input error
    assert "unknown measure(s) ['nope']" in capsys.readouterr().err


def test_align(files, tmp_path, capsys):
    paths, A, B = files
    out = tmp_path / "map.npz"
    assert main(["align", str(paths["A"]), str(paths["B"]), "--method", "linear", "--anchors", "60",
                 "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["anchors"] == 60 and report["relative_error_held_out"] < 1e-2
    saved = np.load(out)
    assert saved["anchors"].shape == (60,) and str(saved["method"]) == "linear"
    assert main(["align", str(paths["A"]), str(paths["B"]), "--method", "rigid"]) == 0
    assert "relative_error_anchors" in capsys.readouterr().out
    assert main(["align", str(paths["A"]), str(paths["B"]), "--anchors", "1000"]) == 1
    assert "--anchors" in capsys.readouterr().err


def test_align_json_is_strict_and_key_messages_name_the_option(files, capsys):
    """Every row an anchor: no held-out error, which the JSON report gives as null (json's
    strict parser refuses NaN); an archive of two arrays names the option of that file."""
    paths, A, B = files
    assert main(["align", str(paths["A"]), str(paths["B"]), "--method", "linear", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} in {out}"))
    assert report["relative_error_held_out"] is None and report["anchors"] == 150
    assert report["relative_error_anchors"] < 1e-2
    for argv, option in ((["align", str(paths["multi"]), str(paths["B"])], "--key-a"),
                         (["align", str(paths["A"]), str(paths["multi"])], "--key-b"),
                         (["compare", str(paths["multi"]), str(paths["A"])], "--key-a")):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert f"choose one with {option}" in err and "['x', 'y']" in err, err
    assert main(["align", str(paths["multi"]), str(paths["A"]), "--key-a", "x", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["relative_error_anchors"] < 1e-12   # A onto itself


def test_example_script_on_files(files, tmp_path):
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "compare_two_models.py"
    paths, A, B = files
    labels = tmp_path / "labels.npy"
    np.save(labels, np.arange(150) % 3)
    out = subprocess.run([sys.executable, str(script), str(paths["A"]), str(paths["A"]), str(labels)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "linear CKA            1.0000" in out.stdout  # a model compared with itself
    assert "RTD                   0.0000" in out.stdout
