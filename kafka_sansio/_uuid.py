"""Fast UUID construction for the generated decoders.

Kept out of ``_wire`` so that importing the codec's core does not import
:mod:`uuid` (which pulls in :mod:`platform`); only message modules with uuid
fields need it.
"""

from __future__ import annotations

from uuid import UUID, SafeUUID

__all__ = ["uuid_from_bytes"]

_new = object.__new__
_object_setattr = object.__setattr__
_int_from_bytes = int.from_bytes
_SAFE_UNKNOWN = SafeUUID.unknown


def uuid_from_bytes(raw: bytes) -> UUID:
    """``UUID(bytes=raw)`` for exactly 16 bytes, without the constructor's checks."""
    value: UUID = _new(UUID)
    _object_setattr(value, "int", _int_from_bytes(raw, "big"))
    _object_setattr(value, "is_safe", _SAFE_UNKNOWN)
    return value
