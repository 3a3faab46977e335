"""TLS for the fake LLM server: a self-signed certificate of 127.0.0.1, made once per process.

Gemini's SDK opens its Live sessions at ``wss://`` whatever the base URL's scheme, so the
fake server answers a connection that starts with a TLS handshake in TLS (the others stay
plain HTTP, on the same port). The certificate is made at the first such connection, with
the ``cryptography`` package (which Gemini's SDK brings, through ``google-auth``); a client
trusts it through :func:`client_context`.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import ssl
import tempfile
from pathlib import Path

__all__ = ["client_context", "server_context"]


@functools.cache
def _certificate() -> tuple[bytes, bytes]:
    """A new self-signed certificate of ``127.0.0.1`` and ``localhost``, and its key (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-llm-server")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@functools.cache
def server_context() -> ssl.SSLContext:
    """The fake server's side of TLS."""
    certificate, key = _certificate()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:  # (the ssl module loads keys from files)
        cert_path, key_path = Path(folder, "cert.pem"), Path(folder, "key.pem")
        cert_path.write_bytes(certificate)
        key_path.write_bytes(key)
        context.load_cert_chain(cert_path, key_path)
    return context


def client_context() -> ssl.SSLContext:
    """A client's TLS context that trusts the fake server (and nothing else)."""
    certificate, _ = _certificate()
    return ssl.create_default_context(cadata=certificate.decode())
