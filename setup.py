"""setuptools entry point: only here because cffi's `cffi_modules` keyword needs setup()."""
from setuptools import setup

setup(cffi_modules=["native/build_native.py:ffibuilder"])
