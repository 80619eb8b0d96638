from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The personas' passwords are hashed on every test; the production hasher's cost buys nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def portal_token(sim) -> str:
    return sim.portal_token()


@pytest.fixture
def registered(sim, portal_token):
    """An instance stored straight in the database with the sim's portal API key (no registration call)."""
    from apps.instances.models import Instance

    return Instance.objects.create(name="sim-reg", url=sim.url, token=portal_token)


@pytest.fixture
def free_port() -> int:
    """A port with nothing listening on it."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def member_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory):
    """A simulator served over HTTPS with a self-signed certificate for 127.0.0.1; yields (server, CA PEM)."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from apps.simulator.server import SimServer

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sim-tls test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_text(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server = SimServer(port=0, name="sim-tls", apps=2, projects=1).start()
    # Same file descriptor, now speaking TLS: the serving loop keeps selecting on it.
    server._httpd.socket = context.wrap_socket(server._httpd.socket, server_side=True)
    server.tls_url = server.url.replace("http://", "https://")
    yield server, pem
    server.stop()
