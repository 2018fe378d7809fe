"""read_lfw_pairs: LFW's public pairs.txt format, checked on small files written here."""

import numpy as np
import pytest

from latentbridge.evaluation import LFWPairs, read_lfw_pairs, verification_accuracy

# two folds of 2 matched + 2 mismatched pairs, LFW's layout (tabs, as in the published file)
PAIRS = """2\t2
Abel_Pacheco\t1\t4
Akhmed_Zakayev\t1\t3
Abdel_Madi_Shabneh\t1\tDean_Barker\t1
Abdel_Madi_Shabneh\t1\tGiancarlo_Fisichella\t1
Aaron_Peirsol\t1\t2
Aaron_Sorkin\t1\t2
AJ_Cook\t1\tMarsha_Thomason\t1
Aaron_Sorkin\t2\tFrank_Solich\t5
"""


def write(tmp_path, text, name="pairs.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_the_ten_fold_layout(tmp_path):
    p = read_lfw_pairs(write(tmp_path, PAIRS))
    assert isinstance(p, LFWPairs)
    assert p.first.tolist() == [
        "Abel_Pacheco/Abel_Pacheco_0001.jpg", "Akhmed_Zakayev/Akhmed_Zakayev_0001.jpg",
        "Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg",
        "Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg",
        "Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Aaron_Sorkin/Aaron_Sorkin_0001.jpg",
        "AJ_Cook/AJ_Cook_0001.jpg", "Aaron_Sorkin/Aaron_Sorkin_0002.jpg"]
    assert p.second.tolist() == [
        "Abel_Pacheco/Abel_Pacheco_0004.jpg", "Akhmed_Zakayev/Akhmed_Zakayev_0003.jpg",
        "Dean_Barker/Dean_Barker_0001.jpg", "Giancarlo_Fisichella/Giancarlo_Fisichella_0001.jpg",
        "Aaron_Peirsol/Aaron_Peirsol_0002.jpg", "Aaron_Sorkin/Aaron_Sorkin_0002.jpg",
        "Marsha_Thomason/Marsha_Thomason_0001.jpg", "Frank_Solich/Frank_Solich_0005.jpg"]
    assert p.same.tolist() == [True, True, False, False] * 2
    assert p.fold.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_single_count_header_of_the_development_files(tmp_path):
    p = read_lfw_pairs(write(tmp_path, "1\nAnn  3  7\nAnn 3 Bob 12\n\n"))
    assert p.first.tolist() == ["Ann/Ann_0003.jpg", "Ann/Ann_0003.jpg"]
    assert p.second.tolist() == ["Ann/Ann_0007.jpg", "Bob/Bob_0012.jpg"]
    assert p.same.tolist() == [True, False]
    assert p.fold.tolist() == [0, 0]


def test_folds_match_verification_accuracy_cut(tmp_path):
    # verification_accuracy cuts pairs into contiguous folds: the reader's order must agree, so a
    # perfect embedding (same identity -> same vector) is verified perfectly fold by fold
    lines = ["10\t3"]
    for f in range(10):
        lines += [f"P{f}_{k}\t1\t2" for k in range(3)]
        lines += [f"P{f}_{k}\t1\tQ{f}_{k}\t1" for k in range(3)]
    p = read_lfw_pairs(write(tmp_path, "\n".join(lines) + "\n"))
    names = sorted({s.split("/")[0] for s in np.concatenate([p.first, p.second])})
    code = {n: i for i, n in enumerate(names)}
    emb = np.eye(len(names))
    e1 = emb[[code[s.split("/")[0]] for s in p.first]]
    e2 = emb[[code[s.split("/")[0]] for s in p.second]]
    assert np.array_equal(np.bincount(p.fold), np.full(10, 6))
    assert verification_accuracy(e1, e2, p.same, folds=10) == 1.0


@pytest.mark.parametrize("text, match", [
    ("", "empty"),
    ("ten 300\n", "header"),
    ("1 2 3\nA 1 2\n", "header"),
    ("0 1\n", "positive"),
    ("1 2\nA 1 2\nB 1 2\nA 1 B 1\n", "4 lines"),
    ("1 1\nA 1 B 2\nA 1 B 2\n", "matched pair needs 3 fields"),
    ("1 1\nA 1 2\nA 1 2\n", "mismatched pair needs 4 fields"),
    ("1 1\nA 0 2\nA 1 B 1\n", "line 2: image number '0'"),
    ("1 1\nA x 2\nA 1 B 1\n", "positive integer"),
])
def test_malformed_files_name_the_problem(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        read_lfw_pairs(write(tmp_path, text))


def test_path_type_and_missing_file(tmp_path):
    with pytest.raises(TypeError, match="path must be"):
        read_lfw_pairs(3)
    with pytest.raises(FileNotFoundError):
        read_lfw_pairs(tmp_path / "absent.txt")
