"""The ``latentbridge`` command line."""

from __future__ import annotations

import argparse
import sys


def _cmd_info(args):
    from ._backend import show_config

    show_config()
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="latentbridge",
        description="Compare, align and translate neural-network representations.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("info", help="version, build options, CPU threads and CUDA status")
    p.set_defaults(func=_cmd_info)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"latentbridge {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
