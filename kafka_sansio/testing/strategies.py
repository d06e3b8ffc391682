"""Hypothesis strategies for every generated Kafka message at every version.

The strategies interpret the field table that the code generator writes next
to this module (``_schema.py``), so they follow the same definitions as the
codec: a value drawn for ``(cls, version)`` is always encodable at that
version.  Fields absent at the version keep their defaults; nullable fields are
sometimes ``None``; flexible versions get random *unknown* tagged fields
(tags that no known field of that structure uses at that version).

Floats are drawn without NaN so that drawn messages compare equal to their
decoded copies (NaN never equals itself); infinities and -0.0 are included.

Typical use::

    from kafka_sansio.testing import strategies as ks

    @given(ks.message("MetadataResponse", 12))
    def test_roundtrip(msg): ...

    @given(ks.requests())
    def test_any_request(pair):
        msg, version = pair
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from .._messages import APIS
from .._wire import Message
from ._schema import SCHEMA

__all__ = ["message", "messages", "requests", "responses", "unknown_tagged_fields"]

_INTS = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}

#: Largest list drawn for an array field; kept small so nested arrays stay cheap.
MAX_ARRAY = 3


def _in(rng: tuple[int, int], version: int) -> bool:
    return rng[0] <= version <= rng[1]


def _class(module: str, name: str) -> type[Any]:
    mod = importlib.import_module(f"kafka_sansio._messages.{module}")
    cls: type[Any] = getattr(mod, name)
    return cls


def _resolve(cls_or_name: type[Message] | str) -> type[Message]:
    if isinstance(cls_or_name, str):
        from ..protocol import message as lookup

        cls: type[Message] = lookup(cls_or_name)
        return cls
    return cls_or_name


def _scalar(kind: str) -> st.SearchStrategy[Any]:
    if kind in _INTS:
        lo, hi = _INTS[kind]
        return st.integers(lo, hi)
    if kind == "bool":
        return st.booleans()
    if kind == "float64":
        return st.floats(allow_nan=False)
    if kind == "string":
        return st.text(max_size=12)
    if kind == "bytes":
        return st.binary(max_size=16)
    if kind == "records":
        return st.binary(max_size=32)
    if kind == "uuid":
        return st.builds(UUID, int=st.integers(0, 2**128 - 1))
    raise AssertionError(kind)


def unknown_tagged_fields(
    known_tags: frozenset[int] = frozenset(),
) -> st.SearchStrategy[dict[int, bytes]]:
    """Dictionaries of unknown tagged fields avoiding *known_tags*."""
    tags = st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1)).filter(
        lambda t: t not in known_tags
    )
    return st.dictionaries(tags, st.binary(max_size=8), max_size=2)


@cache
def _struct(module: str, name: str, version: int, flexible: bool) -> st.SearchStrategy[Any]:
    cls = _class(module, name)
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    known_tags = set()
    for attr, kind, is_array, child, versions, nullable, tagged, tag, _flex in SCHEMA[
        (module, name)
    ]:
        if not _in(versions, version):
            continue
        if tag is not None and flexible and _in(tagged, version):
            known_tags.add(tag)
        elem = _struct(module, child, version, flexible) if child is not None else _scalar(kind)
        value = st.lists(elem, max_size=MAX_ARRAY) if is_array else elem
        if _in(nullable, version):
            value = st.one_of(st.none(), value)
        kwargs[attr] = value
    if flexible:
        kwargs["unknown_tagged_fields"] = unknown_tagged_fields(frozenset(known_tags))
    return st.builds(cls, **kwargs)


def message(cls_or_name: type[Message] | str, version: int) -> st.SearchStrategy[Any]:
    """Instances of a generated message class that are encodable at *version*.

    *cls_or_name* is a class (``MetadataResponse``) or its name; headers
    (``"RequestHeader"``, ``"ResponseHeader"``) work too.
    """
    cls = _resolve(cls_or_name)
    if not cls.MIN_VERSION <= version <= cls.MAX_VERSION:
        raise ValueError(f"{cls.NAME} has no version {version}")
    module = cls.__module__.rsplit(".", 1)[1]
    return _struct(module, cls.__name__, version, cls.is_flexible(version))


def messages(cls_or_name: type[Message] | str) -> st.SearchStrategy[tuple[Any, int]]:
    """``(message, version)`` pairs over every version of one message class."""
    cls = _resolve(cls_or_name)
    versions = st.integers(cls.MIN_VERSION, cls.MAX_VERSION)
    return versions.flatmap(lambda v: message(cls, v).map(lambda m: (m, v)))


def _side(index: int, api_keys: list[int] | None) -> st.SearchStrategy[tuple[Any, int]]:
    keys = sorted(APIS) if api_keys is None else api_keys
    return st.sampled_from(keys).flatmap(
        lambda key: messages(_class(APIS[key][1], APIS[key][index]))
    )


def requests(api_keys: list[int] | None = None) -> st.SearchStrategy[tuple[Any, int]]:
    """``(request, version)`` pairs over every API (or the given keys) and version."""
    return _side(2, api_keys)


def responses(api_keys: list[int] | None = None) -> st.SearchStrategy[tuple[Any, int]]:
    """``(response, version)`` pairs over every API (or the given keys) and version."""
    return _side(3, api_keys)
