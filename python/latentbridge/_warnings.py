"""Warnings attributed to the user's line: the first frame outside latentbridge.

A fixed ``stacklevel`` counts the frames between ``warnings.warn`` and the user, and that count
changes with the route of the call: a public function called through another one (``cca`` through
``shape_distance``), scikit-learn's ``set_output`` wrapper around ``transform`` or a ``Pipeline``,
mutmut's trampoline around each mutated function. :func:`warn_user` walks the stack instead
(``sys._getframe``, every supported Python; 3.12's ``skip_file_prefixes`` would only shorten it).
"""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["warn_user"]

# the package's directory, from this file: right wherever the package lies (the source tree, an
# installed wheel, mutmut's copy under mutants/)
_PACKAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")
# packages whose frames sit between the user's call and ours: scikit-learn (set_output's wrapper
# around transform, Pipeline, cross-validation) and mutmut (its trampoline around each mutated
# function, in the mutation harness). Skipped when imported; no frame of theirs exists otherwise.
_WRAPPERS = ("sklearn", "mutmut")


def _internal_dirs():
    """The directories whose frames are not the user's: latentbridge's and the imported wrappers'."""
    dirs = [_PACKAGE_DIR]
    for name in _WRAPPERS:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            dirs.append(os.path.join(os.path.dirname(os.path.abspath(path)), ""))
    return tuple(dirs)


def warn_user(message, category):
    """``warnings.warn(message, category)`` attributed to the user's line.

    That is the first frame, walking out from the caller, whose file lies outside latentbridge
    and the wrappers above; the outermost frame when there is none (a thread started by
    ``_thread`` on one of our functions), so that the warning still names a real line.
    """
    internal = _internal_dirs()
    frame, level = sys._getframe(1), 2          # level 1 would be this function's own line
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(internal):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
