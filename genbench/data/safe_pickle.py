"""Reading CIFAR-10's pickled batches without letting a data file run code.

A pickle is a program: ``pickle.load`` calls whatever global the file names (``os.system``,
``builtins.exec``, ...). Data roots come from mirrors and colleagues, so genbench never hands a
data file to ``pickle.load``. :class:`DataUnpickler` rebuilds only dicts, lists, tuples,
strings, bytes, numbers, bools, None and numpy arrays: the only globals it resolves are the
few numpy functions that rebuild an array from its bytes, so a file naming any other global is
refused before anything is called (and a file naming none of them cannot call anything).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

# (module, name) pairs a numpy array's pickle needs, in numpy 1.x and 2.x spellings. Each only
# builds an array or a dtype: ``_reconstruct`` makes an empty array of a class that must itself
# be one of these globals (so only ``ndarray``), ``_frombuffer`` views bytes, ``dtype`` parses a
# type code. ``_codecs.encode`` is how protocol-2 pickles write bytes (str -> bytes, nothing else).
ALLOWED_GLOBALS = frozenset({
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
})


class UnsafePickleError(pickle.UnpicklingError):
    """The file names a global genbench does not rebuild: it is not plain data."""


class DataUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS` and no persistent ids."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"the pickle asks for the global {module}.{name}, which plain data never needs "
                f"(only dicts, lists, strings, bytes, numbers and numpy arrays are rebuilt); "
                f"nothing from the file was run")
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("the pickle holds a persistent id, which plain data never needs")


def load_data_pickle(path: Path) -> Any:
    """The object pickled in ``path`` if it is plain data (see the module docstring).

    ``encoding="latin1"`` reads the Python 2 strings of the original CIFAR-10 files, as
    torchvision does. Raises :class:`UnsafePickleError` for a file that names any other global,
    and the usual ``pickle.UnpicklingError``/``EOFError``/``ValueError`` for a damaged one.
    """
    with open(path, "rb") as f:
        data = f.read()
    return DataUnpickler(io.BytesIO(data), encoding="latin1").load()
