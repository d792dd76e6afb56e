"""Configs are frozen dataclasses that round-trip through JSON-compatible dicts, each field
documented by the string literal that follows it (:func:`field_docs`)."""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import re
import textwrap
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-compatible dict of a config dataclass (tuples become lists)."""
    return {
        f.name: list(v) if isinstance(v := getattr(config, f.name), tuple) else v
        for f in dataclasses.fields(config)
    }


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild ``cls`` from :func:`to_dict` output (older names read as their fields'
    current ones, :func:`current_names`); unknown keys are a one-line error."""
    data = current_names(cls, data)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"{cls.__name__}: unknown field(s) {unknown}; expected some of {sorted(names)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {k: _tuple_if_declared(hints[k], v) for k, v in data.items()}
    return cls(**kwargs)


def with_defaults(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a stored config of ``cls``, in current names) with the fields it lacks at
    their defaults: what a config written before those fields existed means."""
    defaults = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()}
    return {**plain, **current_names(cls, data)}


def current_names(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the keys older versions wrote renamed to ``cls``'s fields: the class
    lists them as ``RENAMED = {"old_name": "field_name"}`` (a ``ClassVar``)."""
    renamed: dict[str, str] = getattr(cls, "RENAMED", {})
    return {renamed.get(k, k): v for k, v in data.items()}


def _tuple_if_declared(hint: Any, value: Any) -> Any:
    """JSON has no tuples: turn a list back into a tuple where the field is a tuple."""
    if not isinstance(value, list):
        return value
    origins = {typing.get_origin(hint)}
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        origins = {typing.get_origin(a) for a in typing.get_args(hint)}
    return tuple(value) if tuple in origins else value


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring of every field of dataclass ``cls``, by name: the string literal right
    after the field in the class body (read from the source with :mod:`ast`; cleaned up as
    :func:`inspect.cleandoc` does). Cached per class.

    Where the source cannot be read (a zipped or source-less install) or a field has no
    docstring, its entry is its name and type (``"VAEConfig.latent_dim, of type int"``):
    still a non-empty help text, never an error, since a missing docstring must not stop
    a command from building its options.
    """
    docs: dict[str, str] = {}
    try:
        body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    except (OSError, TypeError, SyntaxError, IndexError, AttributeError):
        body = []
    for field, after in zip(body, body[1:], strict=False):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[field.target.id] = inspect.cleandoc(after.value.value)
    hints = typing.get_type_hints(cls)
    return {
        f.name: docs.get(f.name) or f"{cls.__name__}.{f.name}, of type {_type_name(hints[f.name])}"
        for f in dataclasses.fields(cls)
    }


def field_summary(cls: type, name: str) -> str:
    """The first paragraph of field ``name``'s docstring (:func:`field_docs`) on one line,
    without reST literal quotes: what ``aevb train --help`` shows for the field's option.
    Later paragraphs are for readers of the API only."""
    first = field_docs(cls)[name].split("\n\n", 1)[0]
    return re.sub(r"``(.*?)``", r"\1", " ".join(first.split()))


def _type_name(hint: Any) -> str:
    """``int``, ``tuple[int, ...]``, ``float | None``: a type as it is written."""
    return hint.__name__ if isinstance(hint, type) and not typing.get_args(hint) else str(hint)


def check_choice(owner: str, name: str, value: Any, choices: typing.Iterable[Any]) -> None:
    """Raise ``ValueError`` naming the field when ``value`` is not one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{owner}.{name}={value!r}: expected one of {list(choices)}")


def check_positive(owner: str, name: str, value: float | int | None, *, allow_none=False) -> None:
    """Raise ``ValueError`` naming the field when ``value`` is not > 0."""
    if value is None and allow_none:
        return
    if value is None or not value > 0:
        raise ValueError(f"{owner}.{name}={value!r}: expected a number > 0")
