"""Builds the C walk of the replay's projection (``schemas/_native.pyx``, Cython).

Everything else is in pyproject.toml. The extension is optional: where no C
compiler is, the install goes on without it and the replay uses the Python
projection (same results, slower; ``quoteflow bench replay`` says which).
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("schemas._native", ["schemas/_native.pyx"], optional=True)],
        compiler_directives={"language_level": "3"},
    ),
)
