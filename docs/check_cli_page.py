"""Run the commands shown in docs/guide/cli.rst and check that they still print what the page says.

The page's first ``.. code-block:: python`` writes the example files (run in a temporary folder); each
``.. code-block:: console`` holds ``$ command`` lines, each followed by its expected output (stdout and
stderr together, as a terminal shows them). ``latentbridge ARGS`` runs in this process as
``latentbridge.cli.main(ARGS)`` (what the ``latentbridge`` script and ``python -m latentbridge`` call;
one process instead of a Python start-up per command), in that folder, stdout and stderr captured
together; ``$ echo $?`` prints the previous command's exit code. Matching rules: a line ``...``
stands for any number of lines; a line ending in `` ...`` matches a line that starts like it; decimal
numbers match within the last digit shown (or a relative 1e-6), so other BLAS builds do not fail it;
tqdm progress lines are left out on both sides (their timing varies). ``latentbridge info`` and
``latentbridge demo`` are not run: their output depends on the machine and takes a minute.

Usage: python docs/check_cli_page.py   (run by .ci/docs; exit code 1 with a diff when a command's
output or exit code differs from the page)
"""

import contextlib
import io
import math
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile

from latentbridge.cli import main

PAGE = pathlib.Path(__file__).resolve().parent / "guide" / "cli.rst"
NOT_RUN = ("latentbridge info", "latentbridge demo")
NUMBER = re.compile(r"(-?\d+\.\d+(?:e[+-]?\d+)?)")
PROGRESS = re.compile(r"^compare_many: .*\d+/\d+ \[")


def code_blocks(text, language):
    """The dedented bodies of the page's ``.. code-block:: <language>`` directives, in order."""
    lines, blocks = text.splitlines(), []
    for k, line in enumerate(lines):
        if line.strip() != f".. code-block:: {language}":
            continue
        body = []
        for following in lines[k + 1:]:
            if following.strip() and not following.startswith("   "):
                break
            body.append(following[3:])
        while body and not body[0].strip():
            body.pop(0)
        while body and not body[-1].strip():
            body.pop()
        blocks.append(body)
    return blocks


def sessions(block):
    """``[(command, expected output lines), ...]`` of one console block."""
    out = []
    for line in block:
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out and line.strip():
            out[-1][1].append(line.rstrip())
    return out


def same_number(expected, actual):
    decimals = len(expected.split("e")[0].split(".")[1])
    tolerance = max(1.5 * 10.0 ** -decimals if "e" not in expected else 0.0, 1e-6 * abs(float(expected)))
    return math.isclose(float(expected), float(actual), rel_tol=0.0, abs_tol=tolerance)


def same_line(expected, actual):
    """``expected`` (a page line) matches ``actual`` (an output line), by the rules of the module."""
    prefix = expected.endswith(" ...")
    want = NUMBER.split(expected[:-4] if prefix else expected)
    got = NUMBER.split(actual)
    if len(got) < len(want) or (not prefix and len(got) != len(want)):
        return False
    for k, (w, g) in enumerate(zip(want, got)):
        if k % 2:  # a number
            if not same_number(w, g):
                return False
        elif prefix and k == len(want) - 1:
            return g.startswith(w)
        elif w != g:
            return False
    return True


def matches(expected, actual):
    """Every line of ``expected`` matches ``actual`` in order, ``...`` lines standing for any lines."""
    if not expected:
        return not actual
    if expected[0].strip() == "...":
        return any(matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and same_line(expected[0], actual[0]) and matches(expected[1:], actual[1:])


def run_command(command):
    """``(output lines, exit code)`` of ``latentbridge ARGS`` run in this process."""
    if not command.startswith("latentbridge "):
        raise SystemExit(f"{PAGE.name}: cannot run {command!r} (only latentbridge commands)")
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
        try:
            rc = main(shlex.split(command)[1:])
        except SystemExit as exc:  # argparse's usage errors
            rc = exc.code
    return captured.getvalue().splitlines(), rc


def run_page():
    text = PAGE.read_text()
    failures, checked, previous_rc = [], 0, None
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        make_files = "\n".join(code_blocks(text, "python")[0])
        subprocess.run([sys.executable, "-c", make_files], cwd=folder, check=True)
        os.chdir(folder)
        try:
            for block in code_blocks(text, "console"):
                for command, expected in sessions(block):
                    if command.startswith(NOT_RUN):
                        continue
                    if command == "echo $?":
                        lines, rc = [str(previous_rc)], 0
                    else:
                        lines, rc = run_command(command)
                    lines = [line.rstrip() for line in lines if line.strip() and not PROGRESS.match(line)]
                    expected = [line for line in expected if not PROGRESS.match(line)]
                    checked += 1
                    if not matches(expected, lines):
                        failures.append(f"$ {command}\n--- the page says:\n" + "\n".join(expected)
                                        + "\n--- it printed:\n" + "\n".join(lines))
                    previous_rc = rc
        finally:
            os.chdir(here)
    for failure in failures:
        print(failure, end="\n\n")
    print(f"{PAGE.name}: {checked} commands run, {len(failures)} differ from the page")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run_page())
