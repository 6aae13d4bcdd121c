"""Fused CPU kernels (numba) for the hot loops torch runs as many elementwise passes.

- :mod:`.quantiser`: the QCFS-family activation's forward and backward (training);
- :mod:`.neuron`: the IF neuron's charge / fire / reset / emit over a time chunk,
  with the spike counts the accounting needs (simulation), and the signed neuron's;
- :mod:`.msat`: the MSAT neuron's chunk, its threshold included, by the
  functions of :mod:`.elementary` (exp, softplus, sigmoid from basic float
  operations), which its reference step uses too;
- :mod:`.probe`: the per-layer diagnostics' sums.

Each kernel reproduces the torch code's float operations in the same order and
dtype, so results are bit for bit the same (the exception, a gradient sum added
in another order, is documented where it happens); the tests compare both paths.
The torch code stays the fallback: numba missing or broken, a tensor not on the
CPU, a dtype or memory layout a kernel does not take, torch tracing/compiling,
or ``SNNX_NUMBA=0`` in the environment (the benchmark measures both). Neurons
call their kernel only on the ``"fused"`` backend (``snnx.neurons.BACKENDS``,
``Simulator(backend=…)``); the ``"reference"`` backend runs every neuron's
reference step, which each kernel reproduces. numba
compiles a kernel on its first use (about a second) and caches the machine
code on disk (next to the source, or numba's user cache directory).
"""

from __future__ import annotations

import os
from typing import Callable

import torch

_loaded: dict[str, dict | bool] = {}  # module name → its jitted functions, or False if numba failed
_threads: int | None = None
DTYPES = (torch.float32, torch.float64)


def enabled() -> bool:
    """Whether the kernels are switched on (``SNNX_NUMBA`` ≠ 0) and numba imports."""
    if os.environ.get("SNNX_NUMBA", "1") == "0":
        return False
    try:
        import numba  # noqa: F401
    except Exception:
        return False
    return True


def load(name: str, build: Callable[[], dict]) -> dict | None:
    """The jitted functions ``build()`` returns (built once per process), or None where unusable."""
    if not enabled():
        return None
    if name not in _loaded:
        try:
            _loaded[name] = build()
        except Exception:  # a numba that cannot compile here: the torch code is the fallback
            _loaded[name] = False
    return _loaded[name] or None


def applies(*tensors: torch.Tensor) -> bool:
    """Same-dtype float32/float64 CPU tensors, outside torch tracing and compilation."""
    first = tensors[0]
    return (first.device.type == "cpu" and first.dtype in DTYPES
            and all(t.device.type == "cpu" and t.dtype == first.dtype for t in tensors)
            and not torch.compiler.is_compiling() and not torch.jit.is_tracing())


def sync_threads() -> None:
    """numba keeps its own thread count: use as many threads as torch does."""
    global _threads
    want = torch.get_num_threads()
    if want != _threads:
        import numba  # optional: only reached once a kernel compiled, i.e. numba is there

        numba.set_num_threads(max(1, min(want, numba.config.NUMBA_NUM_THREADS)))
        _threads = want


def scalars(dtype: torch.dtype, *values: float):
    """``values`` as numpy scalars of ``dtype`` (so a kernel's arithmetic runs in that dtype)."""
    import numpy as np  # with numba only: the torch fallback never needs numpy scalars

    t = np.float32 if dtype == torch.float32 else np.float64
    return tuple(t(v) for v in values)


__all__ = ["DTYPES", "applies", "enabled", "load", "scalars", "sync_threads"]
