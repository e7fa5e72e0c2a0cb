"""Builds quoteflow's two C helpers (Cython); everything else is in pyproject.toml.

* ``schemas/_native.pyx``: the replay's projection walk and the outputs' writer
  (schemas/native_projection.py, schemas/native_writer.py).
* ``streams/core/_slots.pyx``: the core's frozen dataclasses filled from C
  (streams/core/frozen.py).

Both have pure-Python twins with the same results, used wherever the extension
cannot be imported; ``make test`` checks that they are built.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [
            Extension("schemas._native", ["schemas/_native.pyx"], optional=True),
            Extension("streams.core._slots", ["streams/core/_slots.pyx"], optional=True),
        ],
        compiler_directives={"language_level": "3"},
    ),
)
