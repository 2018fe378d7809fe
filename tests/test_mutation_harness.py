"""The mutation harness's own rules (.ci/mutants): equivalent mutants found again by what they
change after mutmut renumbers them, and the planted mutants' copy that keeps an unchanged file's
mtime so that the kept build stays valid. The mutated sources below are written by hand in the
layout mutmut 3.8 generates (``x_<function>__mutmut_orig`` and ``x_<function>__mutmut_<n>``)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("tomllib")      # the harness needs Python 3.11 (the package itself 3.9)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / ".ci" / "mutants"))
import mutmut_equivalents as equivalents  # noqa: E402
import plant  # noqa: E402


def mutated_source(variants):
    """A mutated file in mutmut's layout: the original of ``f`` and one function per variant, each
    given as the text of its second line."""
    parts = []
    for n, line in [("orig", "    b = a + 1"), *variants]:
        parts.append(textwrap.dedent(f"""\
            def x_f__mutmut_{n}(a, b=2):
            {line}
                if a > 0:
                    b = a + 1
                return b
            """))
    parts.append(textwrap.dedent("""\
        class C:
            def xǁCǁg__mutmut_orig(self):
                return 1
            def xǁCǁg__mutmut_1(self):
                return 2
        """))
    return "\n".join(parts)


def write(tmp_path, variants):
    path = tmp_path / "mod.py"
    path.write_text(mutated_source(variants))
    return equivalents.fingerprints_of_file("pkg.mod", path)


def test_fingerprint_is_the_change_with_its_function_and_occurrence(tmp_path):
    fps = write(tmp_path, [("1", "    b = a - 1"), ("2", "    b = a + 2"), ("3", "    b = a - 1")])
    # by hand: the function, the removed and the added line (indentation stripped), the occurrence
    assert fps["pkg.mod.x_f__mutmut_1"] == "x_f\n-b = a + 1\n+b = a - 1\n#1"
    assert fps["pkg.mod.x_f__mutmut_2"] == "x_f\n-b = a + 1\n+b = a + 2\n#1"
    # the same change made twice in one function is told apart by its order
    assert fps["pkg.mod.x_f__mutmut_3"] == "x_f\n-b = a + 1\n+b = a - 1\n#2"
    assert fps["pkg.mod.xǁCǁg__mutmut_1"] == "xǁCǁg\n-return 1\n+return 2\n#1"
    assert len(set(fps.values())) == len(fps) == 4


def test_an_equivalent_is_found_again_after_renumbering_and_dropped_when_its_line_changes(tmp_path):
    before = write(tmp_path, [("1", "    b = a - 1"), ("2", "    b = a + 2")])
    listed = {"pkg.mod.x_f__mutmut_2", "pkg.other.x_h__mutmut_4"}
    recorded = {"pkg.mod.x_f__mutmut_2": before["pkg.mod.x_f__mutmut_2"]}
    # a new mutant generated first renumbers the explained one from 2 to 3
    after = write(tmp_path, [("1", "    b = a * 1"), ("2", "    b = a - 1"), ("3", "    b = a + 2")])
    carried, by_name, stale = equivalents.resolve(after, listed, recorded)
    assert carried == {"pkg.mod.x_f__mutmut_3"} and not by_name and not stale
    # the mutated line itself edited: the mutation no longer exists, nothing is carried
    edited = write(tmp_path, [("1", "    b = a - 3"), ("2", "    b = a + 3")])
    carried, by_name, stale = equivalents.resolve(edited, listed, recorded)
    assert not carried and not by_name and stale == {"pkg.mod.x_f__mutmut_2"}
    # a listed name without a fingerprint is explained by its name alone (and run)
    carried, by_name, stale = equivalents.resolve(after, listed, {})
    assert not carried and by_name == {"pkg.mod.x_f__mutmut_2"} and not stale


def test_marked_equivalents_are_entered_as_survivors_in_mutmuts_result_file(tmp_path):
    src = tmp_path / "mutants" / "pkg" / "mod.py"
    src.parent.mkdir(parents=True)
    src.write_text(mutated_source([("1", "    b = a - 1")]))
    meta = src.with_name("mod.py.meta")
    meta.write_text('{"exit_code_by_key": {"pkg.mod.x_f__mutmut_1": null, '
                    '"pkg.mod.xǁCǁg__mutmut_1": null}}')
    assert set(equivalents.mutated_files(tmp_path)) == {"pkg.mod"}
    equivalents.mark_survived(tmp_path, {"pkg.mod.x_f__mutmut_1", "pkg.other.x_h__mutmut_1"})
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    assert codes == {"pkg.mod.x_f__mutmut_1": 0, "pkg.mod.xǁCǁg__mutmut_1": None}


def test_planted_copy_keeps_unchanged_files_and_rewrites_changed_ones(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    for name, text in [("a.cpp", "int a;"), ("b.cpp", "int b;"), ("gone.cpp", "int g;")]:
        (repo / "src" / name).write_text(text)

    def fake_run(cmd, cwd=None, check=False, capture_output=False, text=False):
        class R:
            stdout = "\n".join(str(p.relative_to(repo)) for p in sorted(repo.rglob("*"))
                               if p.is_file())
        return R()

    monkeypatch.setattr(plant, "REPO", repo)
    monkeypatch.setattr(plant.subprocess, "run", fake_run)
    dst = tmp_path / "work" / "src"
    plant.sync_tree(dst, worktree=True)
    assert (dst / "src" / "a.cpp").read_text() == "int a;"
    old = 1_000_000_000
    for name in ("a.cpp", "b.cpp"):
        os.utime(dst / "src" / name, (old, old))
    ext = dst / "python" / "latentbridge" / "_core.so"
    ext.parent.mkdir(parents=True)
    ext.write_bytes(b"built")
    (repo / "src" / "b.cpp").write_text("int b2;")
    (repo / "src" / "gone.cpp").unlink()
    plant.sync_tree(dst, worktree=True)
    assert os.stat(dst / "src" / "a.cpp").st_mtime == old          # unchanged: the build stays valid
    assert (dst / "src" / "b.cpp").read_text() == "int b2;"
    assert os.stat(dst / "src" / "b.cpp").st_mtime > old            # changed: newer than its object
    assert not (dst / "src" / "gone.cpp").exists()
    assert ext.read_bytes() == b"built"                             # the copied extension is kept


@pytest.mark.parametrize("bad", ["../outside", "python/latentbridge/_core.so"])
def test_build_outputs_are_only_the_extension_in_the_package(bad):
    assert plant.is_build_output(Path(bad)) == bad.startswith("python/latentbridge/_core")
