"""The Kafka wire codec: message classes, headers, framing and version negotiation.

Message classes are generated from Kafka's JSON definitions (one module per API
under ``kafka_sansio._messages``) and are imported lazily: importing
``kafka_sansio`` or this module loads none of them.  Ask for a class with
:func:`request_class` / :func:`response_class` (by API key) or :func:`message`
(by name); the module is imported on first use.

Every message class has ``encode(version) -> bytes`` and
``decode(data, version)``.  The helpers here add the request and response
headers.  **Payloads never include the 4-byte size prefix**: a connection layer
frames them with :func:`frame` and splits a byte stream with :func:`read_frame`.

Client side::

    payload = encode_request(request, version, correlation_id, client_id)
    send(frame(payload))
    ... payload, used = read_frame(buffer, max_size)
    header, response = decode_response(api_key, version, payload)

Server side: :func:`decode_request` then :func:`encode_response`.
"""

from __future__ import annotations

import importlib
import struct
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ._errors import FrameTooLargeError, LocalProtocolError, RemoteProtocolError
from ._framing import DEFAULT_MAX_FRAME_SIZE, frame, read_frame
from ._messages import API_KEYS, APIS, RESPONSE_FIRST_FLEXIBLE, VERSIONS
from ._wire import Message

if TYPE_CHECKING:
    from ._messages.headers import RequestHeader, ResponseHeader

__all__ = [
    "API_KEYS",
    "DEFAULT_MAX_FRAME_SIZE",
    "Message",
    "NoCommonVersionError",
    "UnknownApiError",
    "UnsupportedRequestVersionError",
    "api_key_of",
    "api_module",
    "api_name",
    "choose_version",
    "client_versions",
    "decode_request",
    "decode_response",
    "decode_response_header",
    "encode_request",
    "encode_response",
    "frame",
    "message",
    "negotiate_versions",
    "peek_correlation_id",
    "read_frame",
    "request_class",
    "request_header_version",
    "response_class",
    "response_header_version",
]

_API_VERSIONS_KEY = 18
_CONTROLLED_SHUTDOWN_KEY = 7
_SIZE = struct.Struct(">i")
_HHI = struct.Struct(">hhi")
_HH = struct.Struct(">hh")
_H = struct.Struct(">h")


class UnknownApiError(LocalProtocolError):
    """An API key or message name that this library does not know."""


class NoCommonVersionError(LocalProtocolError):
    """The broker and this client share no version of an API."""

    def __init__(
        self, api_key: int, client_range: tuple[int, int], broker_range: tuple[int, int]
    ) -> None:
        name = APIS[api_key][0] if api_key in APIS else f"API {api_key}"
        super().__init__(
            f"no common version of {name} (key {api_key}): client supports "
            f"{client_range[0]}-{client_range[1]}, broker supports "
            f"{broker_range[0]}-{broker_range[1]}"
        )
        self.api_key = api_key
        self.client_range = client_range
        self.broker_range = broker_range


class UnsupportedRequestVersionError(RemoteProtocolError):
    """A request names an API or version this library cannot decode.

    The header fields are kept so that a server can still answer with
    ``UNSUPPORTED_VERSION`` (Kafka answers that with an ApiVersions v0 body).
    """

    def __init__(self, api_key: int, api_version: int, correlation_id: int) -> None:
        super().__init__(f"unsupported request: api key {api_key} version {api_version}")
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id


# ----------------------------------------------------------------------------- lookup


def _module(api_key: int) -> ModuleType:
    try:
        entry = APIS[api_key]
    except KeyError:
        raise UnknownApiError(f"unknown API key {api_key}") from None
    return importlib.import_module(f"kafka_sansio._messages.{entry[1]}")


def api_module(api_key: int) -> ModuleType:
    """The generated module of *api_key* (request, response and nested classes)."""
    return _module(api_key)


def request_class(api_key: int) -> type[Message]:
    """The generated request class of *api_key* (imports its module on first use)."""
    cls: type[Message] = getattr(_module(api_key), APIS[api_key][2])
    return cls


def response_class(api_key: int) -> type[Message]:
    """The generated response class of *api_key* (imports its module on first use)."""
    cls: type[Message] = getattr(_module(api_key), APIS[api_key][3])
    return cls


def api_name(api_key: int) -> str:
    """``"Metadata"`` for 3, and so on."""
    try:
        return APIS[api_key][0]
    except KeyError:
        raise UnknownApiError(f"unknown API key {api_key}") from None


def api_key_of(name: str) -> int:
    """The API key of ``"Metadata"``, ``"MetadataRequest"`` or ``"MetadataResponse"``."""
    for suffix in ("Request", "Response"):
        if name.endswith(suffix) and name[: -len(suffix)] in API_KEYS:
            return API_KEYS[name[: -len(suffix)]]
    try:
        return API_KEYS[name]
    except KeyError:
        raise UnknownApiError(f"unknown API {name!r}") from None


def message(name: str) -> type[Any]:
    """Any generated class by name, e.g. ``"FetchRequest"`` or ``"MetadataResponseTopic"``.

    Nested structure classes work when their name is unique across APIs
    (``"MetadataResponseTopic"``, ``"ApiVersion"``); headers are
    ``"RequestHeader"`` and ``"ResponseHeader"``.  Imports one module.
    """
    from ._messages._index import CLASSES

    modules = CLASSES.get(name)
    if not modules:
        raise UnknownApiError(f"no generated class named {name!r}")
    if len(modules) > 1:
        raise UnknownApiError(
            f"{name!r} is defined by several APIs ({', '.join(modules)}); "
            "take it from the message module instead"
        )
    found = getattr(importlib.import_module(f"kafka_sansio._messages.{modules[0]}"), name)
    if isinstance(found, type):
        return found
    raise UnknownApiError(f"no generated class named {name!r}")


# ----------------------------------------------------------------------------- headers


def request_header_version(api_key: int, version: int) -> int:
    """Header version of a request: 2 if its version is flexible, else 1.

    ControlledShutdown v0 is the one request with header v0 (no client id).
    """
    if api_key == _CONTROLLED_SHUTDOWN_KEY and version == 0:
        return 0
    first_flexible = VERSIONS[api_key][3] if api_key in VERSIONS else -1
    return 2 if 0 <= first_flexible <= version else 1


def response_header_version(api_key: int, version: int) -> int:
    """Header version of a response: 1 if flexible, else 0; ApiVersions is always 0."""
    if api_key == _API_VERSIONS_KEY:
        return 0
    first_flexible = RESPONSE_FIRST_FLEXIBLE.get(api_key, -1)
    return 1 if 0 <= first_flexible <= version else 0


def encode_request(
    request: Message, version: int, correlation_id: int, client_id: str | None = None
) -> bytes:
    """Header plus body of *request* at *version*, without the size prefix.

    Raises :class:`LocalProtocolError` if the request cannot be expressed at
    that version.  Frame the result with :func:`frame` before sending it.
    """
    api_key = request.API_KEY
    if not request.IS_REQUEST:
        raise LocalProtocolError(f"{request.NAME} is not a request")
    header_version = request_header_version(api_key, version)
    out = bytearray()
    try:
        out += _HHI.pack(api_key, version, correlation_id)
    except struct.error as exc:
        raise LocalProtocolError(f"bad request header: {exc}") from None
    if header_version >= 1:
        if client_id is None:
            out += b"\xff\xff"
        else:
            raw = client_id.encode()
            if len(raw) > 0x7FFF:
                raise LocalProtocolError("client id longer than 32767 bytes")
            out += _H.pack(len(raw))
            out += raw
        if header_version >= 2:
            out.append(0)  # no tagged fields
    request.encode_into(out, version)
    return bytes(out)


def encode_response(response: Message, version: int, correlation_id: int) -> bytes:
    """Header plus body of *response* at *version*, without the size prefix."""
    if response.IS_REQUEST:
        raise LocalProtocolError(f"{response.NAME} is not a response")
    out = bytearray()
    try:
        out += _SIZE.pack(correlation_id)
    except struct.error as exc:
        raise LocalProtocolError(f"bad correlation id: {exc}") from None
    if response_header_version(response.API_KEY, version) >= 1:
        out.append(0)
    response.encode_into(out, version)
    return bytes(out)


def peek_correlation_id(payload: bytes | bytearray | memoryview) -> int:
    """The correlation id at the start of a response payload (any header version)."""
    if len(payload) < 4:
        raise RemoteProtocolError("response shorter than its correlation id")
    value: int = _SIZE.unpack_from(payload, 0)[0]
    return value


def _check_size(payload: bytes | bytearray | memoryview, max_size: int | None) -> bytes:
    if max_size is not None and len(payload) > max_size:
        raise FrameTooLargeError(len(payload), max_size)
    return payload if isinstance(payload, bytes) else bytes(payload)


def decode_response_header(
    payload: bytes, api_key: int, version: int
) -> tuple[ResponseHeader, int]:
    """Decode the response header; returns ``(header, offset of the body)``."""
    from ._messages.headers import ResponseHeader

    return ResponseHeader.decode_at(payload, 0, response_header_version(api_key, version))


def decode_response(
    api_key: int,
    version: int,
    payload: bytes | bytearray | memoryview,
    max_size: int | None = DEFAULT_MAX_FRAME_SIZE,
) -> tuple[ResponseHeader, Message]:
    """Decode a whole response payload (header and body, no size prefix).

    *api_key* and *version* are those of the request this answers (look them
    up by :func:`peek_correlation_id`).  Raises :class:`RemoteProtocolError`
    for malformed input and :class:`FrameTooLargeError` above *max_size*.
    """
    buf = _check_size(payload, max_size)
    cls = response_class(api_key)
    header, pos = decode_response_header(buf, api_key, version)
    body, end = cls.decode_at(buf, pos, version)
    if end != len(buf):
        raise RemoteProtocolError(f"{len(buf) - end} trailing bytes after {cls.NAME} v{version}")
    return header, body


def decode_request(
    payload: bytes | bytearray | memoryview, max_size: int | None = DEFAULT_MAX_FRAME_SIZE
) -> tuple[RequestHeader, Message]:
    """Server side: decode a request payload into ``(header, request)``.

    Raises :class:`UnsupportedRequestVersionError` (a RemoteProtocolError that
    keeps the header fields) for an unknown API key or version, and
    :class:`RemoteProtocolError` for malformed input.
    """
    from ._messages.headers import RequestHeader

    buf = _check_size(payload, max_size)
    if len(buf) < 8:
        raise RemoteProtocolError("request shorter than its header")
    api_key, version, correlation_id = _HHI.unpack_from(buf, 0)
    info = VERSIONS.get(api_key)
    if info is None or not info[0] <= version <= info[1]:
        raise UnsupportedRequestVersionError(api_key, version, correlation_id)
    header, pos = RequestHeader.decode_at(buf, 0, request_header_version(api_key, version))
    cls = request_class(api_key)
    body, end = cls.decode_at(buf, pos, version)
    if end != len(buf):
        raise RemoteProtocolError(f"{len(buf) - end} trailing bytes after {cls.NAME} v{version}")
    return header, body


# ----------------------------------------------------------------------------- negotiation


def client_versions(include_unstable: bool = False) -> dict[int, tuple[int, int]]:
    """The request versions this library offers: ``{api_key: (min, max)}``.

    By default the top version of APIs whose latest version Kafka marks
    unstable is left out (and APIs with no stable version at all).
    """
    result = {}
    for api_key, (lo, hi, stable_hi, _flex) in VERSIONS.items():
        top = hi if include_unstable else stable_hi
        if top >= lo:
            result[api_key] = (lo, top)
    return result


def _broker_ranges(broker: Any) -> dict[int, tuple[int, int]]:
    if isinstance(broker, Mapping):
        return {int(k): (int(v[0]), int(v[1])) for k, v in broker.items()}
    api_keys = getattr(broker, "api_keys", None)
    if api_keys is None:
        raise LocalProtocolError("expected an ApiVersionsResponse or a mapping")
    return {k.api_key: (k.min_version, k.max_version) for k in api_keys}


def choose_version(api_key: int, broker: Any, include_unstable: bool = False) -> int:
    """The highest version of *api_key* that both sides support.

    *broker* is an ``ApiVersionsResponse`` or ``{api_key: (min, max)}``.
    Raises :class:`NoCommonVersionError` (naming both ranges) if there is none,
    and :class:`UnknownApiError` if either side lacks the API entirely.
    """
    ranges = _broker_ranges(broker)
    ours = client_versions(include_unstable).get(api_key)
    if ours is None:
        raise UnknownApiError(f"this client implements no usable version of API {api_key}")
    theirs = ranges.get(api_key)
    if theirs is None:
        raise NoCommonVersionError(api_key, ours, (-1, -1))
    lo = max(ours[0], theirs[0])
    hi = min(ours[1], theirs[1])
    if lo > hi:
        raise NoCommonVersionError(api_key, ours, theirs)
    return hi


def negotiate_versions(
    broker: Any, required: Iterable[int] = (), include_unstable: bool = False
) -> dict[int, int]:
    """Pick a version for every API both sides support: ``{api_key: version}``.

    APIs without an overlap are left out, except those listed in *required*,
    for which :class:`NoCommonVersionError` is raised.
    """
    ranges = _broker_ranges(broker)
    ours = client_versions(include_unstable)
    chosen: dict[int, int] = {}
    for api_key, (lo, hi) in ours.items():
        theirs = ranges.get(api_key)
        if theirs is None:
            continue
        top = min(hi, theirs[1])
        if max(lo, theirs[0]) <= top:
            chosen[api_key] = top
    for api_key in required:
        if api_key not in chosen:
            choose_version(api_key, ranges, include_unstable)  # raises with details
    return chosen
