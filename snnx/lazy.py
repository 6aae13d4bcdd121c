"""Names of a package that load on first use (PEP 562).

The component packages keep their registries torch-free, so composing and checking a config does not
wait for torch; the torch-backed names they export are imported when first touched.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_attributes(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``exports`` maps a name to ``"module"`` or ``"module:attr"``
    (relative to ``package``), imported on first access and then kept in the package's namespace."""

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attr = target.partition(":")
        value = getattr(importlib.import_module(f"{package}.{module}"), attr or name)
        importlib.import_module(package).__dict__[name] = value
        return value

    return __getattr__
