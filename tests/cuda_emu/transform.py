"""Rewrite a CUDA source file (cuda/src/*.cu) into C++ for the CPU emulation (include/cuda_runtime.h).

    python transform.py SRC.cu OUT.cpp

Rewrites, keeping every line at its original number (a ``#line`` directive names the .cu file, so
compiler errors and warnings point into the real source):

* ``name<<<grid, block[, smem[, stream]]>>>(args);`` (``name`` may be qualified and carry template
  arguments) -> ``::emu::launch("file.cu", line, dim3(grid), dim3(block), smem, name, args);``: the
  arguments are evaluated once and converted to the kernel's parameter types, as in CUDA; the stream
  is evaluated and ignored (the emulation is synchronous). Every launch site is also registered at
  start-up (``emu::register_site``, appended at the end), so the driver can name the sites it never
  ran;
* ``extern __shared__ T name[];`` -> a pointer to the launch's dynamic shared memory;
* ``__shared__ T name[...]...;`` -> a function-local static, refilled with 0xFF by the first thread
  of every block that passes the declaration (``emu::shared_use``).

Fails loudly (exit status 1, message on stderr) instead of skipping anything: every ``<<<`` of the
code (comments and string literals excluded) must be rewritten, no ``<<<``, ``>>>`` or ``__shared__``
may be left, and a construct it does not know (a launch it cannot parse, a ``__shared__``
declaration of another form) stops it.
"""

from __future__ import annotations

import re
import sys

__all__ = ["TransformError", "transform", "main"]


class TransformError(Exception):
    pass


def _mask_comments_and_strings(s: str) -> str:
    """s with comments and string/char literals replaced by spaces (newlines kept), same length."""
    out = list(s)
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if s.startswith("//", i):
            j = s.find("\n", i)
            j = n if j < 0 else j
            for t in range(i, j):
                out[t] = " "
            i = j
        elif s.startswith("/*", i):
            j = s.find("*/", i + 2)
            if j < 0:
                raise TransformError("unterminated /* comment")
            for t in range(i, j + 2):
                if out[t] != "\n":
                    out[t] = " "
            i = j + 2
        elif c == 'R' and s.startswith('R"', i) and (i == 0 or not (s[i - 1].isalnum() or s[i - 1] == "_")):
            m = re.match(r'R"([^()\\\s]{0,16})\(', s[i:])
            if not m:
                raise TransformError("unparsable raw string literal")
            end = s.find(")" + m.group(1) + '"', i)
            if end < 0:
                raise TransformError("unterminated raw string literal")
            end += len(m.group(1)) + 2
            for t in range(i, end):
                if out[t] != "\n":
                    out[t] = " "
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and s[j] != c:
                if s[j] == "\\":
                    j += 1
                elif s[j] == "\n":
                    raise TransformError("newline in a string or character literal")
                j += 1
            for t in range(i, min(j + 1, n)):
                out[t] = " "
            i = j + 1
        else:
            i += 1
    return "".join(out)


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")", "]", "}"}


def _match_paren(code: str, i: int) -> int:
    """Index just past the bracket closing the one at code[i]."""
    stack = []
    n = len(code)
    j = i
    while j < n:
        c = code[j]
        if c in _OPEN:
            stack.append(_OPEN[c])
        elif c in _CLOSE:
            if not stack or stack.pop() != c:
                raise TransformError("unbalanced brackets")
            if not stack:
                return j + 1
        j += 1
    raise TransformError("unbalanced brackets")


def _split_top(code: str, text_start: int, text_end: int) -> list[tuple[int, int]]:
    """Top-level comma-separated spans of code[text_start:text_end] (brackets respected)."""
    spans, depth, start = [], 0, text_start
    for j in range(text_start, text_end):
        c = code[j]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif c == "," and depth == 0:
            spans.append((start, j))
            start = j + 1
    spans.append((start, text_end))
    return spans


def _line_of(s: str, pos: int) -> int:
    return s.count("\n", 0, pos) + 1


def _kernel_name_start(code: str, end: int, where: str) -> int:
    """Start of the kernel expression ending at code[end] (exclusive): ident(::ident)* [<...>]."""
    j = end
    while j > 0 and code[j - 1].isspace():
        j -= 1
    if j > 0 and code[j - 1] == ">":  # template arguments: walk back to the matching '<'
        depth = 0
        while j > 0:
            j -= 1
            if code[j] == ">":
                depth += 1
            elif code[j] == "<":
                depth -= 1
                if depth == 0:
                    break
            elif code[j] in ";{}":
                raise TransformError(f"{where}: cannot parse the template arguments of the kernel")
        while j > 0 and code[j - 1].isspace():
            j -= 1
    name_end = j
    while j > 0 and (code[j - 1].isalnum() or code[j - 1] == "_" or code[j - 1] == ":"):
        j -= 1
    if j == name_end or not (code[j].isalpha() or code[j] in "_:"):
        raise TransformError(f"{where}: no kernel name before <<<")
    return j


_SHARED_DYN = re.compile(r"extern\s+__shared__\s+(?:alignas\s*\(\s*\d+\s*\)\s+)?([A-Za-z_][\w:]*)\s+(\w+)\s*\[\s*\]\s*;")
_SHARED_STATIC = re.compile(
    r"__shared__\s+(?:alignas\s*\(\s*\d+\s*\)\s+)?((?:const\s+)?[A-Za-z_][\w:]*(?:\s*<[^<>;]*>)?)\s+(\w+)\s*((?:\[[^\[\];]+\]\s*)+);")


def transform(src: str, filename: str = "<cuda>") -> tuple[str, int]:
    """(C++ text, number of launches rewritten) for the CUDA source text src."""
    code = _mask_comments_and_strings(src)
    expected = code.count("<<<")
    site_file = _c_string(filename.replace("\\", "/").rsplit("/", 1)[-1])
    sites = []
    out = []
    pos = 0
    launches = 0
    for m in re.finditer(r"<<<", code):
        i = m.start()
        if i < pos:
            raise TransformError(f"{filename}:{_line_of(src, i)}: nested <<< inside a launch")
        where = f"{filename}:{_line_of(src, i)}"
        name_start = _kernel_name_start(code, i, where)
        cfg_end = code.find(">>>", i + 3)
        if cfg_end < 0:
            raise TransformError(f"{where}: <<< without >>>")
        if "<<<" in code[i + 3:cfg_end]:
            raise TransformError(f"{where}: <<< inside a launch configuration")
        j = cfg_end + 3
        while j < len(code) and code[j].isspace():
            j += 1
        if j >= len(code) or code[j] != "(":
            raise TransformError(f"{where}: no argument list after >>>")
        args_end = _match_paren(code, j)
        k = args_end
        while k < len(code) and code[k].isspace():
            k += 1
        if k >= len(code) or code[k] != ";":
            raise TransformError(f"{where}: a launch must be a statement of its own (';' after the arguments)")
        cfg = [src[a:b].strip() for a, b in _split_top(code, i + 3, cfg_end)]
        if not 2 <= len(cfg) <= 4 or any(not c for c in cfg):
            raise TransformError(f"{where}: cannot parse the launch configuration <<<{src[i + 3:cfg_end]}>>>")
        grid, block = cfg[0], cfg[1]
        smem = cfg[2] if len(cfg) > 2 else "0"
        stream = f" (void){cfg[3]};" if len(cfg) > 3 else ""
        kernel = src[name_start:i].strip()
        args = src[j + 1:args_end - 1]
        original = src[name_start:k + 1]
        line = _line_of(src, i)
        sites.append((line, kernel))
        repl = (f"::emu::launch({site_file}, {line}, dim3({grid}), dim3({block}), static_cast<std::size_t>({smem}), "
                f"{kernel}{', ' if args.strip() else ''}{args});{stream}")
        repl = repl.replace("\n", " ") + "\n" * original.count("\n")  # keep the line numbers
        out.append(src[pos:name_start])
        out.append(repl)
        pos = k + 1
        launches += 1
    out.append(src[pos:])
    text = "".join(out)
    if launches != expected:
        raise TransformError(f"{filename}: {expected} '<<<' in the code but {launches} launches rewritten")

    # Shared memory (on the rewritten text; comments are left alone).
    code = _mask_comments_and_strings(text)
    pieces, pos = [], 0
    for m in sorted(list(_SHARED_DYN.finditer(code)) + list(_SHARED_STATIC.finditer(code)), key=lambda m: m.start()):
        if m.start() < pos:
            continue
        pieces.append(text[pos:m.start()])
        if m.re is _SHARED_DYN:
            t, name = m.group(1), m.group(2)
            pieces.append(f"{t}* {name} = static_cast<{t}*>(::emu::dyn_smem());")
        else:
            t, name, dims = m.group(1), m.group(2), m.group(3)
            pieces.append(f"static {t} {name}{dims}; static unsigned long long {name}_emu_serial_ = 0; "
                          f"::emu::shared_use({name}, sizeof({name}), {name}_emu_serial_);")
        pieces.append("\n" * text.count("\n", m.start(), m.end()))
        pos = m.end()
    pieces.append(text[pos:])
    text = "".join(pieces)

    left = _mask_comments_and_strings(text)
    for token in ("<<<", ">>>", "__shared__", "__constant__", "__managed__", "__syncwarp", "cooperative_groups"):
        if token in left:
            line = _line_of(text, left.index(token))
            raise TransformError(f"{filename}:{line}: '{token}' is not handled by the emulation")
    # Every launch site, registered at start-up: the driver reports (and fails on) sites never run.
    regs = "".join(f"::emu::register_site({site_file}, {line}, {_c_string(k)}), " for line, k in sites)
    text += ("\nnamespace {\n[[maybe_unused]] const int emu_launch_sites_registered_ = (" + regs + "0);\n}\n"
             if sites else "")
    return f"#line 1 {_c_string(filename)}\n" + text, launches


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write("usage: transform.py SRC.cu OUT.cpp\n")
        return 2
    src_path, dst_path = argv[1], argv[2]
    with open(src_path, encoding="utf-8") as f:
        src = f.read()
    try:
        text, launches = transform(src, src_path)
    except TransformError as e:
        sys.stderr.write(f"transform.py: {e}\n")
        return 1
    with open(dst_path, "w", encoding="utf-8") as f:
        f.write(text)
    sys.stderr.write(f"transform.py: {src_path}: {launches} launches rewritten\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
