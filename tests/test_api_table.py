"""Every name in the README's "API tour" table is importable.

The table's "names" column lists backticked names. A bare name comes from ``latentbridge``; a
dotted name ``latentbridge.sub.name`` from the submodule ``latentbridge.sub`` (imported, so
optional submodules such as ``latentbridge.torch`` are checked too, and skipped when their
framework is missing), and the bare names after it in the same row come from that submodule.
Text in parentheses outside backticks (``(+ `partial_fit`, CV over `alphas`)``) describes a name
and is not a name itself.
"""

import importlib
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
# submodules that need an optional framework: skipped (not failed) when it is not installed
OPTIONAL_FRAMEWORK = {"latentbridge.torch": "torch"}


def api_table_rows(text):
    """``[(area, [name, ...]), ...]`` from the markdown table under the "## API tour" heading."""
    section = text.split("## API tour", 1)[1]
    rows, seen_table = [], False
    for line in section.splitlines():
        if line.startswith("#"):
            break
        if not line.startswith("|"):
            if seen_table:
                break
            continue
        seen_table = True
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or set(cells[1]) <= set("-: ") or cells[1] == "names":
            continue
        rows.append((cells[0], names_in_cell(cells[1])))
    return rows


def names_in_cell(cell):
    """The backticked names of a cell outside parentheses, each cut at its first "(" ."""
    names, depth, inside, current = [], 0, False, []
    for ch in cell:
        if ch == "`":
            if inside and depth == 0:
                names.append("".join(current).split("(", 1)[0].strip())
            inside, current = not inside, []
        elif inside:
            current.append(ch)
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
    return names


def resolve(names):
    """``[(module name, attribute), ...]``: where each name of one row is looked up."""
    module, out = "latentbridge", []
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][\w.]*", name):
            raise ValueError(f"not a Python name in the API table: {name!r}")
        if "." in name:
            module, name = name.rsplit(".", 1)
        out.append((module, name))
    return out


def missing(rows):
    """The names of ``rows`` that cannot be imported, as "module.name" strings."""
    out = []
    for _, names in rows:
        for module, name in resolve(names):
            if module in OPTIONAL_FRAMEWORK:
                pytest.importorskip(OPTIONAL_FRAMEWORK[module])
            try:
                ok = hasattr(importlib.import_module(module), name)
            except ImportError:
                ok = False
            if not ok:
                out.append(f"{module}.{name}")
    return out


ROWS = api_table_rows(README.read_text(encoding="utf-8"))


def test_the_table_is_found_and_parsed():
    areas = dict(ROWS)
    assert len(ROWS) >= 8
    assert "compare_many" in areas["many models"]
    assert areas["alignment"][:3] == ["Procrustes", "LinearMap", "RidgeMap"]
    assert "partial_fit" not in areas["alignment"]          # a parenthetical remark, not a name
    assert areas["distances"] == ["pairwise_distances"]


@pytest.mark.parametrize("area,names", ROWS, ids=[area for area, _ in ROWS])
def test_every_name_in_the_row_is_importable(area, names):
    assert missing([(area, names)]) == []


def test_a_missing_name_is_reported():
    table = """## API tour

| area | names |
| --- | --- |
| fine | `pairwise_distances(X)`, `Procrustes` (+ `not_checked`) |
| broken | `no_such_function(X, *, k)`, `latentbridge.plotting.plot_barcode`, `no_such_plot` |
| no module | `latentbridge.no_such_module.f` |

### Next section
"""
    rows = api_table_rows(table)
    assert [area for area, _ in rows] == ["fine", "broken", "no module"]
    assert missing(rows) == ["latentbridge.no_such_function", "latentbridge.plotting.no_such_plot",
                             "latentbridge.no_such_module.f"]
