from __future__ import annotations

import base64

import pytest

from kafka_sansio._errors import LocalProtocolError
from kafka_sansio._sasl import (
    OAuthBearerMechanism,
    PlainMechanism,
    SaslAuthenticationError,
    ScramMechanism,
)

# RFC 7677 section 3 test vector for SCRAM-SHA-256.
RFC7677_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC7677_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC7677_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC7677_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_scram_sha256_rfc7677_vector() -> None:
    mech = ScramMechanism("SCRAM-SHA-256", "user", "pencil", RFC7677_NONCE)
    assert mech.first_message() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert mech.receive(RFC7677_SERVER_FIRST) == RFC7677_CLIENT_FINAL
    assert not mech.complete
    assert mech.receive(RFC7677_SERVER_FINAL) is None
    assert mech.complete


def test_scram_rejects_a_forged_server_signature() -> None:
    mech = ScramMechanism("SCRAM-SHA-256", "user", "pencil", RFC7677_NONCE)
    mech.receive(RFC7677_SERVER_FIRST)
    forged = b"v=" + base64.b64encode(b"\0" * 32)
    with pytest.raises(SaslAuthenticationError, match="signature"):
        mech.receive(forged)
    assert not mech.complete


@pytest.mark.parametrize(
    "server_first",
    [
        b"e=unknown-user",
        b"r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        b"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",  # nonce not extended
        b"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10",  # too few iterations
        b"r=rOprNGfwEbeRWgbNEkqOxyz,s=!!!,i=4096",
        b"r=rOprNGfwEbeRWgbNEkqOxyz,i=4096",
        b"garbage",
        b"\xff\xfe",
    ],
)
def test_scram_rejects_bad_server_first(server_first: bytes) -> None:
    mech = ScramMechanism("SCRAM-SHA-256", "user", "pencil", RFC7677_NONCE)
    with pytest.raises(SaslAuthenticationError):
        mech.receive(server_first)


def test_scram_escapes_username_and_checks_arguments() -> None:
    mech = ScramMechanism("SCRAM-SHA-512", "a=b,c", "pw", "nonce")
    assert mech.first_message() == b"n,,n=a=3Db=2Cc,r=nonce"
    with pytest.raises(LocalProtocolError):
        ScramMechanism("SCRAM-SHA-1", "u", "p", "n")
    with pytest.raises(LocalProtocolError):
        ScramMechanism("SCRAM-SHA-256", "u", "p", "a,b")


def test_plain() -> None:
    mech = PlainMechanism("alice", "alice-secret")
    assert mech.first_message() == b"\0alice\0alice-secret"
    assert mech.receive(b"") is None and mech.complete
    with pytest.raises(LocalProtocolError):
        PlainMechanism("al\0ice", "x")


def test_oauthbearer() -> None:
    mech = OAuthBearerMechanism("tok", {"traceId": "42"})
    assert mech.first_message() == b"n,,\x01auth=Bearer tok\x01traceId=42\x01\x01"
    assert mech.receive(b"") is None and mech.complete
    with pytest.raises(SaslAuthenticationError, match="invalid_token"):
        OAuthBearerMechanism("tok").receive(b'{"status":"invalid_token"}')
