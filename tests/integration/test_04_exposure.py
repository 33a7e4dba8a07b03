"""Scenario 4: only Caddy listens publicly; the db only on 127.0.0.1; api and web nowhere."""

def listening(server):
    """(address, port) of every TCP socket listening on the server (ss -ltnH)."""
    _, out = server.exec("ss -ltnH")
    sockets = set()
    for line in out.splitlines():
        local = line.split()[3]
        address, _, port = local.rpartition(":")
        sockets.add((address.strip("[]"), int(port)))
    return sockets


def test_only_80_and_443_listen_on_public_addresses(deployed, server):
    public = {port for address, port in listening(server) if not address.startswith(("127.", "::1"))}
    # sshd (22) is how the operator reaches the server; everything else the stack adds is 80/443.
    assert public == {22, 80, 443}, public


def test_postgres_listens_on_localhost_only(deployed, server):
    sockets = listening(server)
    assert ("127.0.0.1", 5432) in sockets
    assert not [s for s in sockets if s[1] == 5432 and s[0] != "127.0.0.1"], sockets


def test_api_and_web_ports_are_not_published(deployed, server):
    ports = {port for _, port in listening(server)}
    assert 3000 not in ports and 8000 not in ports
    _, published = server.exec("docker port srq-hpn-api; docker port srq-hpn-web")
    assert published.strip() == ""


def test_caddy_publishes_http3_udp(deployed, server):
    _, published = server.exec("docker port srq-hpn-caddy")
    assert "443/udp" in published
