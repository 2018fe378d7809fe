"""The latentbridge command line."""

import subprocess
import sys

from latentbridge.cli import main


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
