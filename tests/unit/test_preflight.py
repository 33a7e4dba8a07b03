"""Each preflight rule rejects its bad input with its message."""

from dataclasses import replace

import pytest

from tasks import layout
from tasks.settings import generate_password
from tasks.source import git_ssh
from tasks.validation import SettingsError, check_settings, validated_settings

GOOD = {"srq_hpn_domain": "example.com"}
STRONG = generate_password()


def problems(defaults, data=None, environ=None):
    return check_settings({**GOOD, **(data or {})}, defaults, environ or {})


def test_sample_configuration_passes(defaults):
    assert problems(defaults) == []
    assert problems(defaults, environ={"POSTGRES_PASSWORD": STRONG, "POSTGRES_APP_PASSWORD": generate_password()}) == []


@pytest.mark.parametrize(
    "domain, message",
    [
        ("", "srq_hpn_domain (DOMAIN) is required"),
        ("https://example.com", "must be a bare host name"),
        ("example.com/app", "must be a bare host name"),
        ("example.com:8443", "must be a bare host name"),
        ("exa mple.com", "must be a bare host name"),
        ("-bad-.example.com", "is not a valid host name"),
        ("under_score.example.com", "is not a valid host name"),
    ],
)
def test_domain_rules(defaults, domain, message):
    found = problems(defaults, {"srq_hpn_domain": domain})
    assert len(found) == 1 and message in found[0], found


@pytest.mark.parametrize(
    "password, message",
    [
        ("short-but-random-Xy7", "too short (20 characters, at least 32)"),
        ("a" * 40, "does not look random"),
        ("abababababababababababababababababab", "does not look random"),
        ("changeme", "known default or placeholder"),
        ("<generated-superuser-password>", "known default or placeholder"),
        ("Postgres", "known default or placeholder"),
        (STRONG[:20] + " " + STRONG[20:], "must not contain spaces, quotes"),
        (STRONG + "'", "must not contain spaces, quotes"),
    ],
)
def test_password_rules(defaults, password, message):
    found = problems(defaults, environ={"POSTGRES_APP_PASSWORD": password})
    assert any(message in p and p.startswith("POSTGRES_APP_PASSWORD") for p in found), found


def test_passwords_must_differ(defaults):
    found = problems(defaults, environ={"POSTGRES_PASSWORD": STRONG, "POSTGRES_APP_PASSWORD": STRONG})
    assert found == ["POSTGRES_PASSWORD and POSTGRES_APP_PASSWORD must differ"]


@pytest.mark.parametrize("key", ["postgres_db", "postgres_user", "postgres_app_user"])
@pytest.mark.parametrize("value", ["1db", "Srq", "srq-hpn", "a" * 64, "drop table;"])
def test_identifier_rules(defaults, key, value):
    found = problems(defaults, {key: value})
    assert any(p.startswith(f"{key} must be a PostgreSQL identifier") for p in found), found


def test_app_role_must_differ_from_superuser(defaults):
    found = problems(defaults, {"postgres_app_user": "srq_hpn"})
    assert found == ["postgres_app_user must differ from postgres_user (least privilege)"]


def test_unknown_settings_are_named_with_a_hint(defaults):
    found = problems(defaults, {"srq_hpn_domian": "x", "caddy_tsl": "internal", "ssh_port": 22, "other": 1})
    assert found == [
        "unknown setting 'caddy_tsl' (did you mean 'caddy_tls'?)",
        "unknown setting 'srq_hpn_domian' (did you mean 'srq_hpn_domain'?)",
    ]


def test_app_source_rules(defaults, tmp_path):
    assert problems(defaults, {"srq_hpn_app_source": "ftp"}) == [
        "srq_hpn_app_source must be one of upload, git, got 'ftp'"
    ]
    assert problems(defaults, {"srq_hpn_app_local_path": str(tmp_path / "nope")}) == [
        f"srq_hpn_app_local_path {str(tmp_path / 'nope')!r} is not a directory (a checkout of the app)"
    ]
    assert problems(defaults, {"srq_hpn_app_source": "git"}) == [
        "srq_hpn_app_git_repo is required when srq_hpn_app_source is 'git'"
    ]
    found = problems(defaults, {"srq_hpn_app_source": "git", "srq_hpn_app_git_repo": "git@example.com:o/r.git",
                                "srq_hpn_app_git_deploy_key": str(tmp_path / "nope"),
                                "srq_hpn_app_git_branch": "main; reboot", "srq_hpn_app_git_accept_new_host_key": True})
    assert found == [
        "srq_hpn_app_git_branch is not a branch name (letters, digits, . _ / + -, not starting with - . or /): "
        "'main; reboot'",
        f"srq_hpn_app_git_deploy_key {str(tmp_path / 'nope')!r} is not a readable file",
    ]


GIT = {"srq_hpn_app_source": "git", "srq_hpn_app_git_accept_new_host_key": True}


@pytest.mark.parametrize("repository", [
    "--upload-pack=touch /tmp/pwned", "-oProxyCommand=reboot", "git@-oProxyCommand=x:repo", "ext::sh -c reboot",
    "http://example.com/org/app.git", "https://example.com/org/app.git\n", "https://example.com/o/a b.git",
    "file:///srv/app.git", "/srv/$(reboot).git", "https://user@example.com/org/app.git",
])
def test_a_git_repository_that_could_be_an_option_or_a_command_is_refused(defaults, repository):
    found = problems(defaults, {**GIT, "srq_hpn_app_git_repo": repository})
    assert len(found) == 1 and found[0].startswith("srq_hpn_app_git_repo must"), found


def test_credentials_in_the_git_url_are_refused_with_the_way_to_do_it(defaults):
    found = problems(defaults, {**GIT, "srq_hpn_app_git_repo": "https://ci:ghp_TOKEN123@github.com/org/app.git"})
    assert found == ["srq_hpn_app_git_repo must not hold credentials (user:token@): they would be printed, on root's "
                     "command line and in .git/config on the server. Use an SSH URL with srq_hpn_app_git_deploy_key "
                     "(a read-only deploy key)"]
    assert "ghp_TOKEN123" not in found[0]


@pytest.mark.parametrize("repository", [
    "https://github.com/org/app.git", "git@github.com:org/app.git", "ssh://git@git.example.com:2222/org/app.git",
    "/srv/srq-hpn-app.git", "deploy@10.0.0.5:/srv/git/app.git",
])
def test_git_repositories_of_every_supported_form_pass(defaults, repository):
    assert problems(defaults, {**GIT, "srq_hpn_app_git_repo": repository}) == []


@pytest.mark.parametrize("branch", ["-b", "--orphan", "main..x", "a/.hidden", "x.lock", "a@{1}", "main\n", "ma in"])
def test_a_branch_that_is_not_a_branch_name_is_refused(defaults, branch):
    found = problems(defaults, {**GIT, "srq_hpn_app_git_repo": "/srv/app.git", "srq_hpn_app_git_branch": branch})
    assert len(found) == 1 and found[0].startswith("srq_hpn_app_git_branch is not a branch name"), found


def test_an_ssh_git_repository_needs_its_host_key_or_an_explicit_opt_in(defaults):
    data = {"srq_hpn_app_source": "git", "srq_hpn_app_git_repo": "git@github.com:org/app.git"}
    found = problems(defaults, data)
    assert len(found) == 1 and found[0].startswith(
        "srq_hpn_app_git_host_key is required for an SSH repository (github.com): the server must know the git "
        "server's key before it runs the code it serves"), found
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    assert problems(defaults, {**data, "srq_hpn_app_git_host_key": key}) == []
    assert problems(defaults, {**data, "srq_hpn_app_git_host_key": f"github.com {key}"}) == []
    assert problems(defaults, {**data, "srq_hpn_app_git_accept_new_host_key": True}) == []
    # A path on the server or an HTTPS URL needs no host key.
    assert problems(defaults, {**data, "srq_hpn_app_git_repo": "https://github.com/org/app.git"}) == []


def test_git_ssh_command_checks_the_host_key(settings):
    pinned = replace(settings, app_git_repo="git@github.com:org/app.git", app_git_host_key="ssh-ed25519 AAAA",
                     app_git_deploy_key="/home/me/key")
    assert git_ssh(pinned) == (f"ssh -i {layout.GIT_DEPLOY_KEY} -o IdentitiesOnly=yes -o UserKnownHostsFile="
                               f"{layout.GIT_KNOWN_HOSTS} -o StrictHostKeyChecking=yes")
    trusting = replace(pinned, app_git_host_key="", app_git_accept_new_host_key=True)
    assert git_ssh(trusting).endswith("-o StrictHostKeyChecking=accept-new")
    assert git_ssh(replace(settings, app_git_repo="https://github.com/org/app.git")) == ""


def test_app_env_rules(defaults):
    assert problems(defaults, {"app_env": {"SITE_NAME": "Harbor"}}) == []
    assert problems(defaults, {"app_env": {"bad name": "x", "QUOTE": "it's"}}) == [
        "app_env: 'bad name' is not an environment variable name",
        "app_env: the value of QUOTE must not contain single quotes or control characters",
    ]
    assert problems(defaults, {"app_env": {"N": 1}}) == ["app_env must be a dict of strings, got {'N': 1}"]


def test_state_dir_lives_outside_the_checkout(defaults):
    assert problems(defaults, {"srq_hpn_state_dir": "/opt/srq-hpn/.deploy"}) == [
        "srq_hpn_state_dir must be outside srq_hpn_app_dir (the app's checkout), and not contain it"
    ]
    assert problems(defaults, {"srq_hpn_state_dir": "/var/lib"}) == [
        "srq_hpn_state_dir must be an absolute path of its own (letters, digits, . _ - /), got '/var/lib'"
    ]


def test_the_sample_apps_fit_the_contract():
    from tasks.preflight import contract_problems
    from tasks.settings import ROOT
    from tasks.sourcetree import Upload

    for app in (ROOT / "examples" / "srq-hpn-app", ROOT / "tests" / "apps" / "variant-app"):
        assert contract_problems(Upload.of(app)) == [], app


def test_a_checkout_without_the_guide_stack_is_named(tmp_path):
    from tasks.preflight import contract_problems
    from tasks.sourcetree import Upload

    assert contract_problems(Upload.of(tmp_path)) == [
        "srq_hpn_app_local_path: the app's repository has no compose file at its root (compose.yml, as the guide's "
        "\"File Locations\" table says; or compose.yaml, docker-compose.yml)"]
    (tmp_path / "compose.yml").write_text("services:\n  db: {image: postgres:16}\n")
    assert contract_problems(Upload.of(tmp_path)) == [
        "srq_hpn_app_local_path: compose.yml has no service api, web, caddy (the guide's stack: db, api, web, caddy)"]


def test_enumerations_and_types(defaults):
    assert problems(defaults, {"caddy_tls": "selfsigned"}) == [
        "caddy_tls must be one of letsencrypt, internal, got 'selfsigned'"
    ]
    assert problems(defaults, {"docker_install_method": "snap"}) == [
        "docker_install_method must be one of official, distro, got 'snap'"
    ]
    assert problems(defaults, {"postgres_healthy_timeout": "60"}) == [
        "postgres_healthy_timeout must be a positive whole number, got '60'"
    ]
    assert problems(defaults, {"docker_insecure_registries": "registry:5000"}) == [
        "docker_insecure_registries must be a list of strings, got 'registry:5000'"
    ]
    assert problems(defaults, {"srq_hpn_verify": "yes"}) == ["srq_hpn_verify must be True or False, got 'yes'"]
    assert problems(defaults, {"caddy_acme_email": "nobody"}) == [
        "caddy_acme_email is not an email address (letters, digits, . _ % + - @): 'nobody'"]
    for app_dir in ("/opt", "opt/srq", "/opt/srq hpn", "/opt/$(reboot)"):
        assert problems(defaults, {"srq_hpn_app_dir": app_dir}) == [
            f"srq_hpn_app_dir must be an absolute path of its own (letters, digits, . _ - /), got {app_dir!r}"
        ]
    assert problems(defaults, {"docker_log_max_size": "lots"}) == [
        "docker_log_max_size must look like 10m, got 'lots'"
    ]


def test_every_problem_is_reported_at_once(defaults):
    with pytest.raises(SettingsError) as error:
        validated_settings(
            {"srq_hpn_domain": "http://x", "postgres_db": "1x", "caddy_tls": "no", "caddy_tsl": "internal"},
            {"POSTGRES_PASSWORD": "changeme"},
            defaults,
        )
    assert len(error.value.problems) == 5
    text = str(error.value)
    assert "5 problem(s); nothing on the server was changed" in text
    assert "unknown setting 'caddy_tsl' (did you mean 'caddy_tls'?)" in text
    assert "changeme" not in text  # a rejected password is never echoed back


def test_generated_passwords_are_openssl_strength():
    first, second = generate_password(), generate_password()
    assert len(first) == 44 and first != second
    assert problems_free(first)


def problems_free(password):
    from tasks.validation import check_password

    return check_password("X", password) == []


@pytest.mark.parametrize("key, value", [
    ("caddy_acme_ca", "https://acme.example/dir\n}\nevil.example {\n\trespond 200\n"),
    ("caddy_acme_ca", "https://acme.example/dir {"),
    ("caddy_acme_ca", "http://acme.example/dir"),
    ("caddy_acme_email", "ops@example.com\n}"),
    ("caddy_acme_email", "o{ps}@example.com"),
    ("app_next_public_api_base_url", "x'$(touch /tmp/pwned)'"),
    ("app_next_public_api_base_url", "https://api.example.com/\nEXTRA=1"),
    ("app_next_public_api_base_url", "javascript:alert(1)"),
    ("docker_official_repo_url", "http://download.docker.com/linux"),
    ("docker_official_repo_url", "https://download.docker.com/linux\n"),
    ("backup_dir", "/srv/backups\n"),
    ("backup_schedule", "daily\n"),
    ("srq_hpn_app_dir", "/opt/app\n"),
])
def test_values_that_would_reach_a_shell_or_a_config_file_are_refused(defaults, key, value):
    found = problems(defaults, {key: value})
    assert len(found) == 1 and found[0].startswith(key), found


@pytest.mark.parametrize("key, value", [
    ("caddy_acme_ca", "https://acme-staging-v02.api.letsencrypt.org/directory"),
    ("caddy_acme_ca", "https://pebble:14000/dir"),
    ("caddy_acme_email", "ops+certs@example.co.uk"),
    ("app_next_public_api_base_url", "https://api.example.com"),
    ("app_next_public_api_base_url", "/api"),
    ("docker_official_repo_url", "https://mirror.example.com:8443/docker/linux"),
])
def test_good_values_of_those_settings_pass(defaults, key, value):
    assert problems(defaults, {key: value}) == []


def test_registry_settings_must_be_urls_and_hosts(defaults):
    assert problems(defaults, {"docker_registry_mirrors": ["http://registry:5000"],
                               "docker_insecure_registries": ["registry:5000", "10.0.0.0/8"]}) == []
    assert problems(defaults, {"docker_registry_mirrors": ["registry:5000"]}) == [
        "docker_registry_mirrors: 'registry:5000' is not an http(s):// URL"]
    assert problems(defaults, {"docker_insecure_registries": ["http://registry:5000"]}) == [
        "docker_insecure_registries: 'http://registry:5000' is not host[:port] or an IPv4 CIDR"]


def test_app_secrets_rules(defaults):
    assert problems(defaults, {"app_secrets": ["SESSION_SECRET"]}) == []
    assert problems(defaults, {"app_secrets": ["bad name"]}) == ["app_secrets: 'bad name' is not an environment variable name"]
    found = problems(defaults, {"app_secrets": ["RESTIC_PASSWORD", "POSTGRES_PASSWORD", "SRQ_HPN_MONITOR_WEBHOOK_URL"]})
    assert [f.split(" is the deploy's own secret")[0] for f in found] == [
        "app_secrets: RESTIC_PASSWORD", "app_secrets: POSTGRES_PASSWORD", "app_secrets: SRQ_HPN_MONITOR_WEBHOOK_URL"]
    assert problems(defaults, {"app_secrets": ["X"], "app_env": {"X": "1"}}) == [
        "app_secrets: X is also in app_env; a variable is either plain (app_env) or secret"]


@pytest.mark.parametrize("key", ["srq_hpn_app_dir", "srq_hpn_state_dir", "backup_dir"])
@pytest.mark.parametrize("value", ["/.", "/var/lib/.", "/etc/.", "/opt//", "/usr/local", "/usr/local/lib/srq-hpn",
                                   "/root/.ssh", "/var/lib/docker/volumes", "/etc/srq-hpn", "/run/srq"])
def test_a_directory_setting_is_a_directory_of_its_own(defaults, key, value):
    """Any spelling of a system directory, or a place inside the system's trees, is refused:
    the deploy makes these directories root-only (0700) and copies into them."""
    found = problems(defaults, {key: value})
    assert len(found) == 1 and found[0].startswith(f"{key} must be"), found


def test_database_names_postgresql_reserves_are_refused(defaults):
    assert problems(defaults, {"postgres_db": "postgres"})[0].startswith(
        "postgres_db must not be one of PostgreSQL's own databases")
    assert problems(defaults, {"postgres_app_user": "pg_app"})[0].startswith(
        "postgres_app_user must not be a name PostgreSQL reserves")
    assert problems(defaults, {"postgres_app_user": "public"})[0].startswith("postgres_app_user must not be")
    assert problems(defaults, {"postgres_user": "postgres", "postgres_db": "shop"}) == []


def test_acme_settings_are_refused_where_they_would_be_ignored(defaults):
    found = problems(defaults, {"srq_hpn_caddyfile": "repository", "caddy_acme_email": "ops@example.com"})
    assert found == ["caddy_acme_email only applies to the deploy's Caddyfile (srq_hpn_caddyfile = 'template'); "
                     "with the repository's own Caddyfile, set it there (Caddy's global options)"]
    assert problems(defaults, {"caddy_acme_email": "ops@example.com"}) == []


def test_a_private_acme_servers_root_is_a_file_of_certificates(defaults, tmp_path):
    root = tmp_path / "acme-root.pem"
    root.write_text(TEST_ROOT)
    acme = {"caddy_acme_ca": "https://acme.corp.example/dir", "caddy_acme_ca_root": str(root)}
    assert problems(defaults, acme) == []
    assert problems(defaults, {"caddy_acme_ca_root": str(root)}) == [
        "caddy_acme_ca_root is the root of a private ACME server: it needs caddy_tls = 'letsencrypt' and "
        "caddy_acme_ca (that server's directory URL)"]
    assert problems(defaults, {**acme, "caddy_tls": "internal"})[0].startswith("caddy_acme_ca_root is the root of")
    assert problems(defaults, {**acme, "srq_hpn_caddyfile": "repository"})[-1].startswith(
        "caddy_acme_ca_root only applies to the deploy's Caddyfile")
    assert problems(defaults, {**acme, "caddy_acme_ca_root": str(tmp_path / "missing.pem")}) == [
        f"caddy_acme_ca_root {str(tmp_path / 'missing.pem')!r} is not a readable text file (FileNotFoundError)"]
    key = tmp_path / "key.pem"
    key.write_text(root.read_text() + "-----BEGIN PRIVATE KEY-----\nMC4CAQ==\n-----END PRIVATE KEY-----\n")
    assert problems(defaults, {**acme, "caddy_acme_ca_root": str(key)}) == [
        f"caddy_acme_ca_root {str(key)!r} holds a private key: give the root certificate(s) only"]
    text = tmp_path / "text.pem"
    text.write_text("not a certificate\n")
    assert problems(defaults, {**acme, "caddy_acme_ca_root": str(text)}) == [
        f"caddy_acme_ca_root {str(text)!r} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"]
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert problems(defaults, {**acme, "caddy_acme_ca_root": str(broken)})[0].startswith(
        f"caddy_acme_ca_root {str(broken)!r} holds a certificate that cannot be read")


# A self-signed test certificate (CN=srq-hpn unit test root); its key was thrown away.
TEST_ROOT = """\
-----BEGIN CERTIFICATE-----
MIIBlzCCAT2gAwIBAgIUauVjJhJ+8b4SstNlxIUQrxIbUagwCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWc3JxLWhwbiB1bml0IHRlc3Qgcm9vdDAeFw0yNjExMjkyMTM0
MTVaFw0zNjExMjYyMTM0MTVaMCExHzAdBgNVBAMMFnNycS1ocG4gdW5pdCB0ZXN0
IHJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASSm+0KO8MuVTQdFZta96Mp
bzO+baa6hlQhY1lihqgZgjHBWh7SSDOTzjNq+pQRDT0w2K7I7/eB/EsgZAEBsr9G
o1MwUTAdBgNVHQ4EFgQU+/i+1lFzeH1n3Myt75GMEeMsP9swHwYDVR0jBBgwFoAU
+/i+1lFzeH1n3Myt75GMEeMsP9swDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD
AgNIADBFAiEAnjR/z7QKeX832wQ4yUGwLJlo04momZwdlsjC8K5nPKICIGmO8XHm
lD8Ud+YZom1i0sxReVD800rVqq9cIbsT8GAJ
-----END CERTIFICATE-----
"""
