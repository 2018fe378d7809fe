"""Sphinx configuration of latentbridge's documentation (built by .ci/docs; see the README's Development).

The API reference is generated at each build from the ``__all__`` of the public modules (api/*.rst, then
autosummary stubs), so a new public name appears without editing the docs. The gallery runs
docs/examples/plot_*.py with sphinx-gallery and embeds their output and figures.
"""

import importlib
import inspect
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the in-tree package (with its built extension) when it is not installed
# (and for the commands the examples run in a subprocess: docs/examples/plot_layers_cli.py)
if importlib.util.find_spec("latentbridge") is None:
    sys.path.insert(0, str(HERE.parent / "python"))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent / "python"),
                                                             os.environ.get("PYTHONPATH")]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import latentbridge  # noqa: E402

project = "latentbridge"
author = "the latentbridge developers"
copyright = "2026, the latentbridge developers"
release = latentbridge.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "examples/README.rst"]
templates_path = ["_templates"]
html_theme = "pydata_sphinx_theme"
html_title = f"latentbridge {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}

# Every cross-reference must resolve (.ci/docs builds with -W): nitpicky mode, except for the
# free-form numpydoc type descriptions ("ndarray (n, d)"), which are not cross-referenced.
nitpicky = True
nitpick_ignore_regex = [
    # names of other projects (no intersphinx: the build needs no network)
    ("py:.*", r"(numpy|np|scipy|sklearn|torch|matplotlib|pandas|concurrent|distributed|dask)\..*"),
    ("py:class", r"(optional|array|array_like|ndarray|callable|default.*|of|shape|or|.*ComparisonResult)"),
]

autosummary_generate = True
numpydoc_show_class_members = False  # the class template lists the members (autodoc :members:)
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()  # tests/test_docstrings.py runs the validator with its checks

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": False,  # report every failing example; -W turns the failures into an error
    "only_warn_on_example_error": False,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "within_subsection_order": "FileNameSortKey",
}

# --- API reference pages, one per public module, written from __all__ ---------------------------------
PUBLIC_MODULES = {
    "latentbridge": "Top-level API: distances, topology, similarity, measures, alignment, coordinates, "
                    "evaluation, many models.",
    "latentbridge.measures": "The representational-similarity measures and their registry.",
    "latentbridge.torch": "The PyTorch bridge: activations of named layers, layer comparisons, precisions "
                          "and stitching (needs ``latentbridge[torch]``).",
    "latentbridge.plotting": "Figures (needs matplotlib).",
    "latentbridge.datasets": "Small data sets and networks trained here (no download).",
    "latentbridge.diffusion": "The warnings of the diffusion-maps pipeline and the result type of "
                              ":func:`~latentbridge.whitney_check` (the estimators and functions are in "
                              ":doc:`latentbridge`).",
}


def public_names(modname, seen):
    """A module's ``__all__`` less submodules, dunders and objects documented under an earlier module."""
    mod = importlib.import_module(modname)
    out = []
    for name in mod.__all__:
        obj = getattr(mod, name)
        if name.startswith("__") or inspect.ismodule(obj) or id(obj) in seen:
            continue
        if inspect.isclass(obj) or inspect.isroutine(obj):
            seen.add(id(obj))
        out.append(name)
    return out


def write_api_pages():
    api = HERE / "api"
    api.mkdir(exist_ok=True)
    index = ["API reference", "=============", "",
             "Every public name, generated from the modules' ``__all__``.", "", ".. toctree::",
             "   :maxdepth: 1", ""]
    seen = set()
    for modname, blurb in PUBLIC_MODULES.items():
        index.append(f"   {modname}")
        lines = [modname, "=" * len(modname), "", f".. module:: {modname}", "", blurb, "",
                 ".. autosummary::", "   :toctree: generated", ""]
        lines += [f"   {name}" for name in public_names(modname, seen)]
        text = "\n".join(lines) + "\n"
        page = api / f"{modname}.rst"
        if not page.exists() or page.read_text() != text:
            page.write_text(text)
    (api / "index.rst").write_text("\n".join(index) + "\n")


write_api_pages()


def skip_metadata_routing(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_*_request`` methods (metadata routing, not our API)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_metadata_routing)
