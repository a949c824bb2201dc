"""cffi out-of-line API builder for `kafkapy._native`.

setup.py names this file in `cffi_modules`, so `pip install .` and `pip install -e .`
compile the extension; running it directly (`python native/build_native.py`) builds the
.so in place for a quick local check.
"""
from __future__ import annotations

import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "kafkapy_native.h")
SOURCE = os.path.join(HERE, "kafkapy_native.c")


def _cdef_text(header_path: str) -> str:
    """The header minus preprocessor lines, which cffi's cdef parser does not accept."""
    with open(header_path, encoding="utf-8") as f:
        text = f.read()
    return re.sub(r"^\s*#.*$", "", text, flags=re.MULTILINE)


def _rel(path: str, absolute: bool) -> str:
    """setuptools wants sources relative to the project root (the build's cwd); a
    direct run lets cffi chdir into its tmpdir, so it needs absolute paths."""
    rel = os.path.relpath(path)
    return path if absolute or rel.startswith("..") else rel


def make_builder(absolute: bool = False) -> FFI:
    """One FFI for the extension; `absolute` is for builds that change directory."""
    ffi = FFI()
    ffi.cdef(_cdef_text(HEADER))
    ffi.set_source(
        "kafkapy._native",
        '#include "kafkapy_native.h"',
        sources=[_rel(SOURCE, absolute)],
        include_dirs=[_rel(HERE, absolute)],
        depends=[_rel(HEADER, absolute)],
        extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra"],
        py_limited_api=True,
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    import glob
    import shutil

    root = os.path.dirname(HERE)
    built = make_builder(absolute=True).compile(
        tmpdir=os.path.join(root, "build", "native"), verbose=True
    )
    # An older .so with another suffix (abi3 from pip, cpython-311 from here) would
    # shadow or be shadowed by the new one, so keep exactly one.
    for stale in glob.glob(os.path.join(root, "kafkapy", "_native.*.so")):
        os.remove(stale)
    shutil.copy2(built, os.path.join(root, "kafkapy", os.path.basename(built)))
