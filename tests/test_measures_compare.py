"""compare_many and the CLI's ``compare --metrics`` accept every registered measure."""

import json

import numpy as np
import pytest

from latentbridge.cli import main
from latentbridge.compare import compare_many
from latentbridge.measures import registry

SMALL = {"rtd": {"batch": 24, "trials": 1, "seed": 0}, "mutual_knn": {"k": 4},
         "jaccard_knn": {"k": 4}, "rank_similarity": {"k": 4}, "second_order_cosine": {"k": 4},
         "cknna": {"k": 4}, "imd": {"k": 3, "n_probes": 10}, "regression_predictivity": {"cv": 3},
         "minibatch_cka": {"batch_size": 24, "random_state": 0}}


def reps():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((24, 4))
    return {"a": base, "b": base @ rng.standard_normal((4, 6)) + 0.3 * rng.standard_normal((24, 6)),
            "c": rng.standard_normal((24, 3))}


def test_compare_many_accepts_every_registered_measure():
    table = registry()
    data = reps()
    result = compare_many(data, metrics=list(table), progress=False, metric_options=SMALL)
    arrays = list(data.values())
    for name, info in table.items():
        mat = result[name]
        for i in range(3):
            for j in range(3):
                if i == j and info.identical_value is not None:
                    assert mat[i, j] == info.identical_value
                    continue
                expected = info.func(arrays[i], arrays[j], **SMALL.get(name, {}))
                assert mat[i, j] == pytest.approx(expected, rel=1e-12, abs=1e-12), (name, i, j)


def test_compare_many_rejects_an_unknown_name_listing_the_registry():
    with pytest.raises(ValueError, match="procrustes_distance"):
        compare_many(reps(), metrics=["procrustes"], progress=False)


def test_cli_compare_accepts_registered_measures(tmp_path, capsys):
    data = reps()
    np.save(tmp_path / "a.npy", data["a"])
    np.save(tmp_path / "b.npy", data["b"])
    names = ["procrustes_distance", "cca", "rsa", "gulp", "ensd"]
    assert main(["compare", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--metrics",
                 ",".join(names), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    table = registry()
    for name in names:
        assert out[name] == pytest.approx(table[name].func(data["a"], data["b"]), rel=1e-12)
    assert main(["compare", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--metrics", "nope"]) == 1
