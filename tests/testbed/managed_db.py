"""A stand-in for a managed PostgreSQL (RDS and the like): a PostgreSQL server container of
its own on the test network, reachable only over TLS (a certificate of a CA made for the
run, naming its address), with an admin role that has CREATEROLE and CREATEDB but is not a
superuser (as RDS's master user), owning the app's database. The superuser exists only for
the tests' own assertions, on a port published on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import psycopg

from tests.testbed.base import LOOPBACK, TestbedError, _docker, _labels, _published_port

PORT = 5432
ADMIN, DATABASE = "srq_admin", "srq_hpn"

# Runs once at the first start (the image's init scripts): the admin role and its database;
# TCP connections only over TLS, with a password.
_INIT = """#!/bin/bash
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres \\
	-v admin="$MANAGED_ADMIN" -v password="$MANAGED_ADMIN_PASSWORD" -v db="$MANAGED_DB" <<'SQL'
CREATE ROLE :"admin" LOGIN CREATEROLE CREATEDB PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"admin";
SQL
cat >"$PGDATA/pg_hba.conf" <<'HBA'
local all all trust
hostssl all all all scram-sha-256
hostnossl all all all reject
HBA
"""

# The certificate is made once the container has its address: the entrypoint waits for it (and
# the init script), then gives the key to the postgres user (0600), as PostgreSQL requires.
_START = ("until [ -e /tls/ready ]; do sleep 0.1; done && "
          "install -o postgres -g postgres -m 600 /tls/server.key /var/lib/postgresql/server.key && "
          "install -o postgres -g postgres -m 644 /tls/server.crt /var/lib/postgresql/server.crt && "
          "exec docker-entrypoint.sh postgres -c ssl=on -c ssl_cert_file=/var/lib/postgresql/server.crt "
          "-c ssl_key_file=/var/lib/postgresql/server.key -c password_encryption=scram-sha-256")


def _certificates(directory: Path, names: list[str], addresses: list[str]) -> tuple[Path, bytes, bytes]:
    """A CA, and the server's certificate and key signed by it; returns (CA file, cert PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "srq-hpn testbed managed-database CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    alt = [x509.DNSName(name) for name in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return ca_file, cert.public_bytes(serialization.Encoding.PEM), key_pem


@dataclass
class ManagedDatabase:
    """The running stand-in: where the servers reach it, and the tests' superuser access."""

    container: Any
    address: str  # on the test network (in the certificate)
    alias: str  # its network alias (in the certificate too)
    ca_file: Path
    admin_password: str
    superuser_password: str
    port: int  # published on 127.0.0.1, for the tests' assertions

    def settings(self) -> dict[str, Any]:
        """The deploy's settings that point the stack at it (verify-full with its CA)."""
        return {"postgres_host": self.address, "postgres_port": PORT, "postgres_user": ADMIN,
                "postgres_db": DATABASE, "postgres_sslmode": "verify-full", "postgres_ssl_ca": str(self.ca_file),
                "backup_wal_archive": False}

    def env(self) -> dict[str, str]:
        """The operator's environment: the admin's password (the provider's, never generated)."""
        return {"POSTGRES_PASSWORD": self.admin_password}

    def connect(self, user: str = "postgres", password: str | None = None, dbname: str = DATABASE):
        """A connection from the test, over TLS verified against the CA (as the superuser by default)."""
        return psycopg.connect(host=LOOPBACK, port=self.port, dbname=dbname, user=user,
                               password=self.superuser_password if password is None else password,
                               sslmode="verify-ca", sslrootcert=str(self.ca_file), autocommit=True,
                               connect_timeout=10)

    def query(self, sql: str, *params) -> list[tuple]:
        with self.connect() as connection:
            return connection.execute(sql, params or None).fetchall()

    def remove(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.container.remove(force=True, v=True)


def start_managed_db(network: str, image: str, workdir: Path, *, sandbox: bool = False, run_id: str,
                     name: str, timeout: float = 90) -> ManagedDatabase:
    """Start the stand-in on ``network`` and wait until it answers over TLS."""
    admin_password = secrets.token_urlsafe(32)
    superuser_password = secrets.token_urlsafe(32)
    client = _docker()
    # The address is known once the container is on the network: create it, read it, then
    # make the certificate and copy it in before the server starts.
    container = client.containers.create(
        image, name=name, hostname=name, labels=_labels(sandbox, run_id),
        entrypoint=["bash", "-c", _START],
        environment={"POSTGRES_PASSWORD": superuser_password, "MANAGED_ADMIN": ADMIN,
                     "MANAGED_ADMIN_PASSWORD": admin_password, "MANAGED_DB": DATABASE},
        ports={f"{PORT}/tcp": (LOOPBACK, None)}, network=network,
        networking_config={network: client.api.create_endpoint_config(aliases=[name])},
    )
    try:
        container.start()
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        ca_file, cert, key = _certificates(workdir / name, [name], [address])
        _put(container, {"/tls/server.crt": (cert, 0o644), "/tls/server.key": (key, 0o600),
                         "/docker-entrypoint-initdb.d/10-managed.sh": (_INIT.encode(), 0o755),
                         "/tls/ready": (b"1\n", 0o644)})
    except Exception:
        with contextlib.suppress(Exception):
            container.remove(force=True, v=True)
        raise
    database = ManagedDatabase(container, address, name, ca_file, admin_password, superuser_password,
                               _published_port(container, PORT))
    _wait(database, timeout)
    return database


def _put(container, files: dict[str, tuple[bytes, int]]) -> None:
    """Copy files into a container (a tar archive at /), before its entrypoint needs them."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path, (data, mode) in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
    container.put_archive("/", buffer.getvalue())


def _wait(database: ManagedDatabase, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "not tried"
    while time.monotonic() < deadline:
        try:
            with database.connect(ADMIN, database.admin_password):
                return
        except psycopg.OperationalError as error:
            last = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        database.container.reload()
        if database.container.status != "running":
            break
        time.sleep(0.5)
    logs = database.container.logs(tail=40).decode(errors="replace")
    raise TestbedError(f"the managed-database stand-in did not answer over TLS ({last}); its last lines:\n{logs}")
