"""The database from the operator's machine: an SSH tunnel to the server's 127.0.0.1:5432."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from typing import Iterator

import paramiko

from tests.testbed.base import LOOPBACK
from tests.testbed.servers import Server

@contextlib.contextmanager
def db_tunnel(server: Server, remote_port: int = 5432, remote_host: str = LOOPBACK) -> Iterator[int]:
    """An SSH tunnel (paramiko direct-tcpip) from a random 127.0.0.1 port here to the
    server's 127.0.0.1:5432; yields the local port (for psycopg's host/port)."""
    client = server.ssh_client()
    transport = client.get_transport()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOOPBACK, 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def pump(local: socket.socket) -> None:
        try:
            channel = transport.open_channel("direct-tcpip", (remote_host, remote_port), local.getpeername())
        except (paramiko.SSHException, OSError):
            local.close()
            return
        try:
            while not stop.is_set():
                readable, _, _ = select.select([local, channel], [], [], 0.2)
                if local in readable:
                    data = local.recv(65536)
                    if not data:
                        break
                    channel.sendall(data)
                if channel in readable:
                    data = channel.recv(65536)
                    if not data:
                        break
                    local.sendall(data)
        except OSError:
            pass
        finally:
            channel.close()
            local.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                local, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            worker = threading.Thread(target=pump, args=(local,), daemon=True)
            worker.start()
            workers.append(worker)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join(timeout=5)
        for worker in workers:
            worker.join(timeout=5)
        listener.close()
        client.close()
