"""Round trips of every generated message at every version, plus headers,
error table, encode-side validation and version negotiation."""

from __future__ import annotations

import struct
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_sansio import LocalProtocolError, RemoteProtocolError, errors, protocol
from kafka_sansio._messages import APIS, VERSIONS
from kafka_sansio.testing import strategies as ks

CLASSES = [
    pytest.param(key, side, id=f"{APIS[key][2 if side == 'request' else 3]}")
    for key in sorted(APIS)
    for side in ("request", "response")
]

FEW = settings(
    max_examples=8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _cls(key: int, side: str) -> type[protocol.Message]:
    return protocol.request_class(key) if side == "request" else protocol.response_class(key)


def test_registry_covers_every_definition() -> None:
    assert len(APIS) == 88
    for key, (name, _module, req, resp) in APIS.items():
        assert req == name + "Request" and resp == name + "Response"
        request, response = protocol.request_class(key), protocol.response_class(key)
        assert (key, key) == (request.API_KEY, response.API_KEY)
        assert request.IS_REQUEST and not response.IS_REQUEST
        lo, hi, stable, flex = VERSIONS[key]
        assert (lo, hi) == (request.MIN_VERSION, request.MAX_VERSION)
        assert (stable, flex) == (request.MAX_STABLE_VERSION, request.FIRST_FLEXIBLE_VERSION)


@pytest.mark.parametrize(("key", "side"), CLASSES)
@FEW
@given(data=st.data())
def test_roundtrip_every_version(key: int, side: str, data: st.DataObject) -> None:
    cls = _cls(key, side)
    for version in range(cls.MIN_VERSION, cls.MAX_VERSION + 1):
        msg = data.draw(ks.message(cls, version), label=f"v{version}")
        encoded = msg.encode(version)
        decoded = cls.decode(encoded, version)
        assert decoded == msg
        assert decoded.encode(version) == encoded


@FEW
@given(ks.requests())
def test_any_request_roundtrips_with_header(pair: tuple[protocol.Message, int]) -> None:
    request, version = pair
    payload = protocol.encode_request(request, version, correlation_id=42, client_id="cli")
    header, decoded = protocol.decode_request(payload)
    assert decoded == request
    assert header.request_api_key == request.API_KEY
    assert header.request_api_version == version
    assert header.correlation_id == 42
    expected_client = (
        "" if protocol.request_header_version(request.API_KEY, version) == 0 else "cli"
    )
    assert header.client_id == expected_client


@FEW
@given(ks.responses())
def test_any_response_roundtrips_with_header(pair: tuple[protocol.Message, int]) -> None:
    response, version = pair
    payload = protocol.encode_response(response, version, correlation_id=-7)
    assert protocol.peek_correlation_id(payload) == -7
    header, decoded = protocol.decode_response(response.API_KEY, version, payload)
    assert header.correlation_id == -7
    assert decoded == response


# ----------------------------------------------------------------------------- exact bytes


def test_exact_bytes_api_versions_request_v3() -> None:
    req = protocol.message("ApiVersionsRequest")(
        client_software_name="ks", client_software_version="1"
    )
    payload = protocol.encode_request(req, 3, correlation_id=1, client_id="c")
    assert payload == (
        b"\x00\x12\x00\x03\x00\x00\x00\x01"  # api key 18, version 3, correlation id 1
        b"\x00\x01c"  # client id: always an int16-length string
        b"\x00"  # header tagged fields
        b"\x03ks\x021"  # compact strings (length + 1)
        b"\x00"  # body tagged fields
    )


def test_exact_bytes_metadata_request_v0_and_v1() -> None:
    cls = protocol.request_class(3)
    topic = protocol.message("MetadataRequestTopic")(name="ab")
    assert cls(topics=[topic]).encode(0) == b"\x00\x00\x00\x01\x00\x02ab"
    assert cls(topics=None).encode(1) == b"\xff\xff\xff\xff"
    # v9+: compact array, compact string, tagged fields
    assert cls(topics=[topic]).encode(9) == b"\x02\x03ab\x00\x01\x00\x00\x00"


def test_header_versions() -> None:
    assert protocol.request_header_version(7, 0) == 0  # ControlledShutdown v0
    assert protocol.request_header_version(7, 1) == 1
    assert protocol.request_header_version(3, 8) == 1
    assert protocol.request_header_version(3, 9) == 2
    assert protocol.response_header_version(3, 8) == 0
    assert protocol.response_header_version(3, 9) == 1
    assert protocol.response_header_version(18, 4) == 0  # ApiVersions: always v0
    assert protocol.request_header_version(18, 3) == 2


def test_controlled_shutdown_v0_header_has_no_client_id() -> None:
    req = protocol.request_class(7)(broker_id=3)
    payload = protocol.encode_request(req, 0, correlation_id=5, client_id="ignored")
    assert payload == b"\x00\x07\x00\x00\x00\x00\x00\x05\x00\x00\x00\x03"
    header, body = protocol.decode_request(payload)
    assert header.client_id == "" and body == req  # v0 has no client id: the default


def test_api_versions_response_header_is_v0_even_when_flexible() -> None:
    resp = protocol.response_class(18)(error_code=0)
    payload = protocol.encode_response(resp, 3, correlation_id=9)
    assert payload[:4] == b"\x00\x00\x00\x09"
    assert protocol.response_class(18).decode(payload[4:], 3) == resp


def test_request_header_tagged_fields_preserved() -> None:
    header_cls = protocol.message("RequestHeader")
    header = header_cls(
        request_api_key=3,
        request_api_version=12,
        correlation_id=1,
        client_id=None,
        unknown_tagged_fields={5: b"xy"},
    )
    raw = header.encode(2)
    assert raw == b"\x00\x03\x00\x0c\x00\x00\x00\x01\xff\xff\x01\x05\x02xy"
    assert header_cls.decode(raw, 2) == header


def test_unknown_header_api_is_reported_with_correlation_id() -> None:
    payload = struct.pack(">hhih", 9999, 0, 77, -1)
    with pytest.raises(protocol.UnsupportedRequestVersionError) as info:
        protocol.decode_request(payload)
    assert info.value.correlation_id == 77 and info.value.api_key == 9999
    payload = struct.pack(">hhih", 3, 99, 78, -1)
    with pytest.raises(protocol.UnsupportedRequestVersionError):
        protocol.decode_request(payload)


# ----------------------------------------------------------------------------- tagged fields


def test_unknown_tagged_fields_preserved_at_every_level() -> None:
    mod = protocol.message
    resp = mod("MetadataResponse")(
        topics=[
            mod("MetadataResponseTopic")(
                name="t",
                partitions=[
                    mod("MetadataResponsePartition")(
                        partition_index=0, unknown_tagged_fields={3: b"\x01\x02", 900: b""}
                    )
                ],
                unknown_tagged_fields={0: b"abc"},
            )
        ],
        unknown_tagged_fields={2**32 - 1: b"z" * 200},
    )
    raw = resp.encode(12)
    back = mod("MetadataResponse").decode(raw, 12)
    assert back == resp
    assert back.topics[0].partitions[0].unknown_tagged_fields == {3: b"\x01\x02", 900: b""}
    assert back.unknown_tagged_fields == {2**32 - 1: b"z" * 200}
    assert back.encode(12) == raw


def test_unknown_tags_injected_into_bytes_survive_reencoding() -> None:
    cls = protocol.request_class(18)
    base = cls(client_software_name="a", client_software_version="b").encode(3)
    assert base.endswith(b"\x00")
    injected = base[:-1] + b"\x02\x01\x03abc\x0a\x00"  # tags 1 (3 bytes) and 10 (empty)
    msg = cls.decode(injected, 3)
    assert msg.unknown_tagged_fields == {1: b"abc", 10: b""}
    assert msg.encode(3) == injected


def test_known_tagged_fields() -> None:
    fetch = protocol.request_class(1)
    req = fetch(cluster_id="cluster-x", replica_id=-1, max_wait_ms=10)
    raw = req.encode(12)
    assert b"cluster-x" in raw
    assert fetch.decode(raw, 12).cluster_id == "cluster-x"
    # default (null) tagged field is not written at all
    assert b"cluster" not in fetch(cluster_id=None).encode(12)
    # before v12 the field does not exist; it is ignorable so it is dropped
    assert fetch.decode(req.encode(11), 11).cluster_id is None

    api = protocol.response_class(18)
    feature = protocol.message("SupportedFeatureKey")(name="f", min_version=1, max_version=2)
    resp = api(finalized_features_epoch=5, supported_features=[feature])
    back = api.decode(resp.encode(3), 3)
    assert back.finalized_features_epoch == 5 and back.supported_features == [feature]


def test_tagged_field_collision_and_order_checks() -> None:
    cls = protocol.request_class(18)
    base = cls().encode(3)[:-1]
    with pytest.raises(RemoteProtocolError):
        cls.decode(base + b"\x02\x05\x00\x01\x00", 3)  # tags out of order
    with pytest.raises(RemoteProtocolError):
        cls.decode(base + b"\x02\x01\x00\x01\x00", 3)  # repeated tag
    fetch = protocol.request_class(1)
    with pytest.raises(LocalProtocolError):
        fetch(cluster_id="x", unknown_tagged_fields={0: b"y"}).encode(12)  # tag 0 is ClusterId


# ----------------------------------------------------------------------------- validation


def test_encode_rejects_null_where_the_version_forbids_it() -> None:
    meta = protocol.request_class(3)
    with pytest.raises(LocalProtocolError, match="not nullable"):
        meta(topics=None).encode(0)
    assert meta(topics=None).encode(1) == b"\xff\xff\xff\xff"


def test_encode_rejects_non_default_non_ignorable_absent_field() -> None:
    meta = protocol.request_class(3)
    with pytest.raises(LocalProtocolError, match="AllowAutoTopicCreation"):
        meta(topics=[], allow_auto_topic_creation=False).encode(3)
    assert meta(topics=[], allow_auto_topic_creation=False).encode(4)


def test_encode_drops_absent_ignorable_fields() -> None:
    resp = protocol.response_class(3)
    decoded = resp.decode(resp(throttle_time_ms=5).encode(0), 0)
    assert decoded.throttle_time_ms == 0


def test_encode_rejects_bad_values() -> None:
    meta = protocol.response_class(3)
    with pytest.raises(LocalProtocolError):
        meta(throttle_time_ms=2**31).encode(12)
    with pytest.raises(LocalProtocolError):
        meta(cluster_id=5).encode(12)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="tagged"):
        meta(unknown_tagged_fields={1: b""}).encode(8)
    with pytest.raises(LocalProtocolError, match="no version"):
        meta().encode(13)
    with pytest.raises(LocalProtocolError):
        protocol.encode_request(meta(), 12, 1)  # a response is not a request
    with pytest.raises(LocalProtocolError):
        protocol.request_class(3)(
            topics=[protocol.message("MetadataRequestTopic")(name="x" * 40000)]
        ).encode(12)


def test_defaults_follow_the_definitions() -> None:
    meta = protocol.response_class(3)()
    assert meta.controller_id == -1
    assert meta.cluster_authorized_operations == -(2**31)
    assert meta.cluster_id is None and meta.brokers == [] and meta.topics == []
    assert protocol.request_class(3)().allow_auto_topic_creation is True
    topic = protocol.message("MetadataResponseTopic")()
    assert topic.topic_id == uuid.UUID(int=0) and topic.name == ""
    # mutable defaults are not shared
    a, b = protocol.response_class(3)(), protocol.response_class(3)()
    a.topics.append(topic)
    assert b.topics == []


def test_records_are_zero_copy_views() -> None:
    produce = protocol.request_class(0)
    topic = protocol.message("TopicProduceData")(
        name="t", partition_data=[protocol.message("PartitionProduceData")(index=0, records=b"RB")]
    )
    raw = produce(topic_data=[topic], acks=-1, timeout_ms=1000).encode(9)
    back = produce.decode(raw, 9)
    records = back.topic_data[0].partition_data[0].records
    assert isinstance(records, memoryview) and bytes(records) == b"RB"


def test_message_lookup() -> None:
    assert protocol.api_key_of("Metadata") == 3
    assert protocol.api_key_of("FetchResponse") == 1
    assert protocol.api_name(18) == "ApiVersions"
    assert protocol.message("MetadataResponseTopic").__name__ == "MetadataResponseTopic"
    with pytest.raises(protocol.UnknownApiError):
        protocol.message("NoSuchThing")
    with pytest.raises(protocol.UnknownApiError):
        protocol.request_class(9999)


# ----------------------------------------------------------------------------- errors


def test_error_table() -> None:
    assert errors.error_for_code(1) is errors.OffsetOutOfRangeError
    assert not errors.OffsetOutOfRangeError.retriable
    assert errors.OffsetOutOfRangeError.code == 1
    assert issubclass(errors.CorruptMessageError, errors.RetriableBrokerError)
    assert issubclass(errors.error_for_code(-1), errors.BrokerError)
    assert errors.error_for_code(-1).__name__ == "UnknownServerError"
    assert errors.error_code(6).name == "NOT_LEADER_OR_FOLLOWER"
    assert errors.error_code(6).retriable
    assert errors.error_for_code(6) is errors.NotLeaderOrFollowerError
    assert len(errors.ERROR_CODES) >= 129
    for code, info in errors.ERROR_CODES.items():
        if code == 0:
            continue
        cls = errors.error_for_code(code)
        assert cls.code == code and cls.name == info.name
        assert cls.retriable == info.retriable
        assert issubclass(cls, errors.RetriableBrokerError) == info.retriable
        assert issubclass(cls, errors.BrokerError)


def test_unknown_and_zero_codes() -> None:
    assert errors.error_for_code(31000) is errors.UnknownErrorCodeError
    exc = errors.exception_for_code(31000)
    assert exc.code == 31000 and not exc.retriable
    assert errors.error_code(31000).name == "UNKNOWN_ERROR_CODE"
    with pytest.raises(LocalProtocolError):
        errors.error_for_code(0)
    errors.raise_for_code(0)
    with pytest.raises(errors.TopicAuthorizationFailedError):
        errors.raise_for_code(29)
    with pytest.raises(errors.BrokerError) as info:
        errors.raise_for_code(7, "custom")
    assert str(info.value) == "custom" and info.value.code == 7


# ----------------------------------------------------------------------------- negotiation


def test_negotiation_picks_highest_common_version() -> None:
    broker = {3: (0, 9), 1: (4, 20), 18: (0, 3)}
    chosen = protocol.negotiate_versions(broker)
    assert chosen[3] == 9
    assert chosen[1] == protocol.request_class(1).MAX_STABLE_VERSION
    assert chosen[18] == 3
    assert 0 not in chosen  # broker lacks Produce


def test_negotiation_from_api_versions_response() -> None:
    resp_cls = protocol.response_class(18)
    key_cls = protocol.message("ApiVersion")
    resp = resp_cls(api_keys=[key_cls(api_key=3, min_version=1, max_version=5)])
    assert protocol.choose_version(3, resp) == 5
    assert protocol.negotiate_versions(resp) == {3: 5}


def test_negotiation_no_overlap_names_both_ranges() -> None:
    with pytest.raises(protocol.NoCommonVersionError) as info:
        protocol.choose_version(3, {3: (40, 50)})
    err = info.value
    assert err.api_key == 3 and err.broker_range == (40, 50)
    assert err.client_range == (0, 12)
    assert "Metadata" in str(err) and "40-50" in str(err) and "0-12" in str(err)
    with pytest.raises(protocol.NoCommonVersionError):
        protocol.negotiate_versions({3: (40, 50)}, required=[3])
    assert protocol.negotiate_versions({3: (40, 50)}) == {}
    with pytest.raises(protocol.NoCommonVersionError):
        protocol.choose_version(3, {})


def test_negotiation_unstable_versions() -> None:
    # EndTxn's latest version (5) is marked unstable in the definitions.
    end_txn = protocol.request_class(26)
    assert end_txn.MAX_STABLE_VERSION == end_txn.MAX_VERSION - 1
    broker = {26: (0, end_txn.MAX_VERSION)}
    assert protocol.choose_version(26, broker) == end_txn.MAX_VERSION - 1
    assert protocol.choose_version(26, broker, include_unstable=True) == end_txn.MAX_VERSION
    # ShareFetch has only an unstable version: not offered by default.
    assert 78 not in protocol.client_versions()
    assert protocol.client_versions(include_unstable=True)[78] == (0, 0)
    with pytest.raises(protocol.UnknownApiError):
        protocol.choose_version(78, {78: (0, 0)})
    # the unstable version can still be encoded and decoded
    share = protocol.request_class(78)
    assert share.decode(share().encode(0), 0) == share()


@pytest.mark.parametrize("name", ["RequestHeader", "ResponseHeader"])
@FEW
@given(data=st.data())
def test_headers_roundtrip_every_version(name: str, data: st.DataObject) -> None:
    cls = protocol.message(name)
    for version in range(cls.MIN_VERSION, cls.MAX_VERSION + 1):
        header = data.draw(ks.message(cls, version), label=f"v{version}")
        encoded = header.encode(version)
        assert cls.decode(encoded, version) == header
        assert cls.decode(encoded, version).encode(version) == encoded
