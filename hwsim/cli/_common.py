"""Helpers shared by the command modules (this module is not a command: its name starts with '_')."""

from __future__ import annotations

import numpy as np

from hwsim.errors import HwsimError


def load_array(path: str, what: str) -> np.ndarray:
    """A plain ``.npy`` array (never a pickle, never an ``.npz`` archive), or one HwsimError naming the option
    and the file."""
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise HwsimError(f"{what} {path}: no such file") from None
    except (ValueError, EOFError) as exc:
        raise HwsimError(f"{what} {path}: not a plain numpy array file ({exc or 'empty file'})") from None
    except OSError as exc:
        raise HwsimError(f"{what} {path}: cannot read: {exc}") from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise HwsimError(f"{what} {path}: expected a .npy array file, got an .npz archive")
    return arr
