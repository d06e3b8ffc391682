"""SASL mechanisms as small pure state machines.

A connection drives a mechanism like this: send ``SaslHandshake`` naming
``mechanism.name``, then ``SaslAuthenticate`` with :meth:`first_message`, and
for every server answer call :meth:`receive` with the server's bytes; it
returns the next bytes to send, or ``None`` once authentication is complete.
A mechanism never reads a clock or a random source: SCRAM's client nonce is
passed in by the caller.

Implemented: PLAIN (RFC 4616), SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802,
RFC 7677, as Kafka's KIP-84 uses them), and OAUTHBEARER (RFC 7628, KIP-255)
with a token the caller supplies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from ._errors import KafkaSansioError, LocalProtocolError

__all__ = [
    "SaslAuthenticationError",
    "SaslMechanism",
    "PlainMechanism",
    "ScramMechanism",
    "OAuthBearerMechanism",
]

_SCRAM_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}

#: Kafka refuses SCRAM credentials with fewer iterations; so does its Java client.
SCRAM_MIN_ITERATIONS = 4096


class SaslAuthenticationError(KafkaSansioError):
    """The server refused the credentials, or answered the exchange inconsistently."""


class SaslMechanism:
    """Base class: one authentication exchange, used once."""

    name = ""

    def __init__(self) -> None:
        self.complete = False

    def first_message(self) -> bytes:
        """The client's first message.  Call once, before :meth:`receive`."""
        raise NotImplementedError

    def receive(self, challenge: bytes) -> bytes | None:
        """Process the server's answer; return the next message, or ``None`` when done.

        Raises :class:`SaslAuthenticationError` when the answer is an error or
        does not fit the exchange.
        """
        raise NotImplementedError


class PlainMechanism(SaslMechanism):
    """SASL PLAIN: username and password in one message (use it over TLS)."""

    name = "PLAIN"

    def __init__(self, username: str, password: str, authzid: str = "") -> None:
        super().__init__()
        if "\0" in username or "\0" in password or "\0" in authzid:
            raise LocalProtocolError("PLAIN credentials cannot contain NUL characters")
        self._message = f"{authzid}\0{username}\0{password}".encode()

    def first_message(self) -> bytes:
        return self._message

    def receive(self, challenge: bytes) -> bytes | None:
        self.complete = True
        return None


def _scram_name(value: str) -> str:
    return value.replace("=", "=3D").replace(",", "=2C")


def _attributes(message: bytes) -> dict[str, str]:
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslAuthenticationError("SCRAM server message is not UTF-8") from None
    attrs: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or len(key) != 1:
            raise SaslAuthenticationError(f"malformed SCRAM server message {text!r}")
        attrs[key] = value
    return attrs


class ScramMechanism(SaslMechanism):
    """SCRAM-SHA-256 or SCRAM-SHA-512.

    ``nonce`` must be fresh and unpredictable for every exchange (the caller
    draws it from its random source, e.g. ``secrets.token_urlsafe(24)``); it may
    not contain a comma.
    """

    def __init__(self, mechanism: str, username: str, password: str, nonce: str) -> None:
        super().__init__()
        if mechanism not in _SCRAM_HASHES:
            raise LocalProtocolError(f"unknown SCRAM mechanism {mechanism!r}")
        if not nonce or "," in nonce:
            raise LocalProtocolError("the SCRAM nonce must be non-empty and contain no comma")
        self.name = mechanism
        self._hash = _SCRAM_HASHES[mechanism]
        self._password = password.encode()
        self._nonce = nonce
        self._first_bare = f"n={_scram_name(username)},r={nonce}"
        self._server_signature: bytes | None = None

    def first_message(self) -> bytes:
        return ("n,," + self._first_bare).encode()

    def _hmac(self, key: bytes, msg: bytes) -> bytes:
        return hmac.new(key, msg, self._hash).digest()

    def receive(self, challenge: bytes) -> bytes | None:
        if self._server_signature is None:
            return self._client_final(challenge)
        attrs = _attributes(challenge)
        if "e" in attrs:
            raise SaslAuthenticationError(f"SCRAM authentication failed: {attrs['e']}")
        try:
            verifier = base64.b64decode(attrs["v"], validate=True)
        except (KeyError, ValueError):
            raise SaslAuthenticationError("SCRAM server-final message has no valid verifier") from None
        if not hmac.compare_digest(verifier, self._server_signature):
            raise SaslAuthenticationError("SCRAM server signature does not match: wrong server")
        self.complete = True
        return None

    def _client_final(self, server_first: bytes) -> bytes:
        attrs = _attributes(server_first)
        if "e" in attrs:
            raise SaslAuthenticationError(f"SCRAM authentication failed: {attrs['e']}")
        try:
            nonce = attrs["r"]
            salt = base64.b64decode(attrs["s"], validate=True)
            iterations = int(attrs["i"])
        except (KeyError, ValueError):
            raise SaslAuthenticationError("malformed SCRAM server-first message") from None
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise SaslAuthenticationError("SCRAM server nonce does not extend the client nonce")
        if iterations < SCRAM_MIN_ITERATIONS:
            raise SaslAuthenticationError(
                f"SCRAM iteration count {iterations} is below the minimum {SCRAM_MIN_ITERATIONS}"
            )
        salted = hashlib.pbkdf2_hmac(self._hash, self._password, salt, iterations)
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self._hash, client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._first_bare},{server_first.decode()},{without_proof}".encode()
        signature = self._hmac(stored_key, auth_message)
        proof = (int.from_bytes(client_key, "big") ^ int.from_bytes(signature, "big")).to_bytes(
            len(client_key), "big"
        )
        self._server_signature = self._hmac(self._hmac(salted, b"Server Key"), auth_message)
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


class OAuthBearerMechanism(SaslMechanism):
    """OAUTHBEARER with a token the caller obtained (KIP-255).

    ``extensions`` are sent as SASL extensions (KIP-342).  Fetching and
    refreshing tokens is the caller's business: pass a fresh token each time a
    connection authenticates.
    """

    name = "OAUTHBEARER"

    def __init__(self, token: str, extensions: dict[str, str] | None = None) -> None:
        super().__init__()
        parts = [f"auth=Bearer {token}"]
        parts += [f"{key}={value}" for key, value in sorted((extensions or {}).items())]
        self._message = ("n,,\x01" + "\x01".join(parts) + "\x01\x01").encode()

    def first_message(self) -> bytes:
        return self._message

    def receive(self, challenge: bytes) -> bytes | None:
        if challenge:
            # RFC 7628: an error arrives as a JSON challenge; the client answers with
            # a single 0x01 and the server then fails the exchange.
            raise SaslAuthenticationError(
                f"OAUTHBEARER token refused: {challenge.decode('utf-8', 'replace')}"
            )
        self.complete = True
        return None
