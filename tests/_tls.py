"""Throwaway certificates for TLS tests, made with the ``openssl`` command line tool.

:func:`make_ca` creates a self-signed certificate authority; :func:`make_server_cert` issues a
server certificate from it (subject alternative names for the given DNS names and IP
addresses) and packs key, certificate and CA into a PKCS#12 keystore that the Kafka broker
loads (``ssl.keystore.type=PKCS12``). Keys are EC P-256 (quick to make); certificates carry
the extensions strict X.509 verification asks for (key identifiers, key usage, basic
constraints), so Python's default context accepts them on every supported version.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Validity of every certificate made here (they live as long as one test session).
DAYS = 7


class CertError(RuntimeError):
    """``openssl`` is missing or one of its commands failed (the message has its output)."""


@dataclass(frozen=True)
class CertAuthority:
    """A certificate authority: ``cert`` (PEM) is what a client passes as ``cafile``."""

    name: str
    key: Path
    cert: Path


@dataclass(frozen=True)
class ServerCert:
    """A server key and certificate issued by ``ca``, in PEM and as a PKCS#12 keystore."""

    ca: CertAuthority
    key: Path
    cert: Path
    keystore: Path
    password: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise CertError("the `openssl` command is not on PATH (needed to make test certificates)")
    proc = subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise CertError(f"openssl {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr}")


def _ec_key(path: Path) -> None:
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", str(path), cwd=path.parent,
    )  # fmt: skip


def make_ca(directory: Path, name: str = "test-ca") -> CertAuthority:
    """Create ``NAME.key`` and ``NAME.pem`` (a self-signed CA) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / f"{name}.key"
    cert = directory / f"{name}.pem"
    config = directory / f"{name}.cnf"
    config.write_text(
        "[req]\n"
        "distinguished_name = dn\n"
        "x509_extensions = ext\n"
        "prompt = no\n"
        "[dn]\n"
        f"CN = kafka-sansio {name}\n"
        "[ext]\n"
        "basicConstraints = critical, CA:TRUE\n"
        "keyUsage = critical, keyCertSign, cRLSign\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid:always\n"
    )
    _ec_key(key)
    _openssl(
        "req", "-x509", "-new", "-key", str(key), "-config", str(config),
        "-days", str(DAYS), "-sha256", "-out", str(cert), cwd=directory,
    )  # fmt: skip
    return CertAuthority(name, key, cert)


def make_server_cert(
    ca: CertAuthority,
    directory: Path,
    name: str = "server",
    *,
    dns_names: tuple[str, ...] = ("localhost",),
    ip_addresses: tuple[str, ...] = ("127.0.0.1",),
    password: str = "test-keystore-pw",
) -> ServerCert:
    """Issue a server certificate from ``ca`` valid for ``dns_names`` and ``ip_addresses``.

    Writes ``NAME.key``, ``NAME.pem`` (the certificate followed by the CA's) and ``NAME.p12``
    (key + chain, protected by ``password``) into ``directory``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / f"{name}.key"
    csr = directory / f"{name}.csr"
    leaf = directory / f"{name}.leaf.pem"
    chain = directory / f"{name}.pem"
    keystore = directory / f"{name}.p12"
    ext = directory / f"{name}.ext"
    sans = [f"DNS:{d}" for d in dns_names] + [f"IP:{ip}" for ip in ip_addresses]
    ext.write_text(
        f"subjectAltName = {', '.join(sans)}\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    common_name = dns_names[0] if dns_names else ip_addresses[0]
    _ec_key(key)
    _openssl(
        "req", "-new", "-key", str(key), "-subj", f"/CN={common_name}", "-out", str(csr),
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-CAcreateserial", "-days", str(DAYS), "-sha256", "-extfile", str(ext),
        "-out", str(leaf), cwd=directory,
    )  # fmt: skip
    chain.write_text(leaf.read_text() + ca.cert.read_text())
    _openssl(
        "pkcs12", "-export", "-inkey", str(key), "-in", str(leaf), "-certfile", str(ca.cert),
        "-name", "kafka", "-out", str(keystore), "-passout", f"pass:{password}",
        cwd=directory,
    )  # fmt: skip
    return ServerCert(ca, key, chain, keystore, password, tuple(dns_names), tuple(ip_addresses))
