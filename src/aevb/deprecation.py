"""Names of the Python API that were renamed or moved: the old name keeps working for one
more release, with a ``DeprecationWarning`` naming its replacement (CHANGELOG.md lists
them). Each alias sits in the module of the old name."""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def deprecated(old: str, new: str) -> None:
    """Warn, at the caller's caller, that ``old`` is deprecated in favour of ``new``."""
    warnings.warn(
        f"{old} is deprecated and will be removed in a later release: use {new}",
        DeprecationWarning,
        stacklevel=3,
    )


def moved(module: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``module`` whose ``names`` moved: each old name
    maps to its new place, "package.module.name"."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new_module, new_name = names[name].rsplit(".", 1)
        deprecated(f"{module}.{name}", names[name])
        return getattr(importlib.import_module(new_module), new_name)

    return __getattr__


def renamed_kwargs(**renames: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: a function whose keyword arguments were renamed (``old="new"``) still
    takes the old names."""

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def call(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    deprecated(f"{f.__qualname__}({old}=)", f"{f.__qualname__}({new}=)")
                    kwargs[new] = kwargs.pop(old)
            return f(*args, **kwargs)

        return call

    return wrap
