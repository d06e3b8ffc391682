"""Fuzz harnesses for the protocol codec.

Invariant, for every decoder family: any byte string either decodes or raises
``RemoteProtocolError`` (or a subclass) - never IndexError, struct.error,
UnicodeDecodeError, MemoryError or anything else.

Families:

* ``requests``  - ``protocol.decode_request(payload)`` (server side, header + body);
* ``responses`` - ``protocol.decode_response(api_key, version, payload)``; the
  first three input bytes choose the API and version, the rest is the payload;
* ``headers``   - request/response headers at every header version, and
  ``protocol.read_frame`` with a small size limit.

Run with atheris when it is installed (coverage-guided)::

    python fuzz/fuzz_codec.py responses -atheris_runs=100000

otherwise (or with ``--hypothesis``) inputs come from hypothesis: valid
encodings of random messages, then truncated, extended or corrupted::

    python fuzz/fuzz_codec.py responses --examples 5000

The test suite runs each family for a bounded number of inputs
(``tests/test_fuzz_codec.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_sansio import RemoteProtocolError, protocol
from kafka_sansio._messages import APIS
from kafka_sansio.testing import strategies as ks

API_KEYS = sorted(APIS)


def _select(data: bytes, is_request: bool) -> tuple[type[protocol.Message], int, bytes]:
    """Map the first three input bytes to a message class and a valid version."""
    if len(data) < 3:
        data = data + b"\x00" * (3 - len(data))
    key = API_KEYS[data[0] % len(API_KEYS)]
    cls = protocol.request_class(key) if is_request else protocol.response_class(key)
    span = cls.MAX_VERSION - cls.MIN_VERSION + 1
    version = cls.MIN_VERSION + (data[1] * 256 + data[2]) % span
    return cls, version, data[3:]


def check_request(data: bytes) -> None:
    """Server-side decoding of a request payload (header + body)."""
    with contextlib.suppress(RemoteProtocolError):
        protocol.decode_request(data, max_size=1 << 20)


def check_response(data: bytes) -> None:
    """Client-side decoding of a response payload for a chosen API and version."""
    cls, version, payload = _select(data, is_request=False)
    with contextlib.suppress(RemoteProtocolError):
        protocol.decode_response(cls.API_KEY, version, payload, max_size=1 << 20)
    # the bare body decoder too, and the matching request decoder
    with contextlib.suppress(RemoteProtocolError):
        cls.decode(payload, version)
    req, req_version, _ = _select(data, is_request=True)
    with contextlib.suppress(RemoteProtocolError):
        req.decode(payload, req_version)


def check_header(data: bytes) -> None:
    """Headers at every header version and the frame splitter."""
    request_header = protocol.message("RequestHeader")
    response_header = protocol.message("ResponseHeader")
    for version in (0, 1, 2):
        with contextlib.suppress(RemoteProtocolError):
            request_header.decode(data, version)
    for version in (0, 1):
        with contextlib.suppress(RemoteProtocolError):
            response_header.decode(data, version)
    try:
        payload, used = protocol.read_frame(data, max_size=64)
    except RemoteProtocolError:
        pass
    else:
        assert (payload is None and used == 0) or (payload is not None and used == len(payload) + 4)


HARNESSES: dict[str, Callable[[bytes], None]] = {
    "requests": check_request,
    "responses": check_response,
    "headers": check_header,
}


# ----------------------------------------------------------------------------- inputs


@st.composite
def _mutated(draw: st.DrawFn, encoded: bytes) -> bytes:
    """Corrupt a valid encoding: truncate, extend, overwrite or splice bytes."""
    data = bytearray(encoded)
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["truncate", "extend", "overwrite", "insert", "delete"]))
        pos = draw(st.integers(0, len(data)))
        if op == "truncate":
            del data[pos:]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=8))
        elif op == "overwrite" and pos < len(data):
            data[pos] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]))
        elif op == "insert":
            data[pos:pos] = draw(
                st.sampled_from([b"\xff\xff\xff\xff", b"\x7f\xff", b"\x80", b"\x00"])
            )
        elif op == "delete" and pos < len(data):
            del data[pos]
    return bytes(data)


@st.composite
def request_inputs(draw: st.DrawFn) -> bytes:
    request, version = draw(ks.requests())
    payload = protocol.encode_request(request, version, draw(st.integers(0, 2**31 - 1)), "fuzz")
    return draw(st.one_of(st.binary(max_size=64), _mutated(payload)))


@st.composite
def response_inputs(draw: st.DrawFn) -> bytes:
    key_index = draw(st.integers(0, len(API_KEYS) - 1))
    cls = protocol.response_class(API_KEYS[key_index])
    version = draw(st.integers(cls.MIN_VERSION, cls.MAX_VERSION))
    span = cls.MAX_VERSION - cls.MIN_VERSION + 1
    # choose selector bytes that map back to this class and version
    selector = version - cls.MIN_VERSION
    prefix = bytes([key_index, 0, selector % span])
    payload = protocol.encode_response(draw(ks.message(cls, version)), version, 1)
    return prefix + draw(st.one_of(st.binary(max_size=64), _mutated(payload)))


@st.composite
def header_inputs(draw: st.DrawFn) -> bytes:
    version = draw(st.integers(0, 2))
    valid = draw(ks.message("RequestHeader", version)).encode(version)
    return draw(st.one_of(st.binary(max_size=32), _mutated(valid)))


INPUTS: dict[str, Callable[[], st.SearchStrategy[bytes]]] = {
    "requests": request_inputs,
    "responses": response_inputs,
    "headers": header_inputs,
}


def run_hypothesis(name: str, examples: int) -> None:
    """Run harness *name* on *examples* hypothesis-generated inputs."""
    harness = HARNESSES[name]

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(INPUTS[name]())
    def run(data: bytes) -> None:
        harness(data)

    run()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description="Fuzz the kafka_sansio codec.")
    parser.add_argument("family", choices=sorted(HARNESSES))
    parser.add_argument("--examples", type=int, default=2000, help="hypothesis mode: inputs")
    parser.add_argument("--hypothesis", action="store_true", help="do not use atheris")
    args, rest = parser.parse_known_args(argv)
    if not args.hypothesis:
        try:
            import atheris  # type: ignore[import-not-found]
        except ImportError:
            print("atheris is not installed; using hypothesis", file=sys.stderr)
        else:
            harness = HARNESSES[args.family]
            atheris.Setup([sys.argv[0], *rest], harness)
            atheris.Fuzz()
            return 0
    run_hypothesis(args.family, args.examples)
    print(f"{args.family}: {args.examples} inputs, invariant held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
