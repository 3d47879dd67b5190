"""The HTTPS certificate Asterisk serves the secure WebSocket (WSS) with.

Production names a real certificate and key (``PHONEBANK_TLS_CERT``/``PHONEBANK_TLS_KEY``). Demos and tests get a
self-signed one, made once per data dir with the ``cryptography`` package and kept, so a browser that was told to
trust it keeps trusting it across restarts.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from phonebank.settings import Settings

SELF_SIGNED_DAYS = 825


def certificate(settings: Settings) -> tuple[Path, Path]:
    """(certificate, key) PEM paths for Asterisk's HTTPS server."""
    if settings.tls_cert or settings.tls_key:
        cert, key = Path(settings.tls_cert), Path(settings.tls_key)
        for what, path in (("PHONEBANK_TLS_CERT", cert), ("PHONEBANK_TLS_KEY", key)):
            if not path.is_file():
                raise FileNotFoundError(f"{what}={path} is not a file (both the certificate and its key are needed)")
        return cert, key
    cert = settings.data_dir / "tls" / "self-signed.crt"
    key = settings.data_dir / "tls" / "self-signed.key"
    if not (cert.exists() and key.exists()):
        make_self_signed(cert, key, hosts=sorted({"localhost", "127.0.0.1", settings.public_sip_host}))
    return cert, key


def make_self_signed(cert_path: Path, key_path: Path, hosts: list[str]) -> None:
    """A self-signed certificate valid for ``hosts`` (names and IP addresses)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "phonebank self-signed"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "phonebank demo"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(
        key_path,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def install(cert: Path, key: Path, cert_dest: Path, key_dest: Path) -> None:
    """Copy the pair where Asterisk reads it; the key stays readable by its owner only."""
    cert_dest.write_bytes(cert.read_bytes())
    _write_private(key_dest, key.read_bytes())


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)
