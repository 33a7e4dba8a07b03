"""Where each value of .env.production comes from, and what is refused."""

from dataclasses import replace

from tasks.secrets import PASSWORD_SOURCES, EnvSources, Passwords, choose

PASSWORDS = Passwords("a" * 10, "b" * 10)


def resolve(settings, needed, environ=None, on_server=None):
    return EnvSources(settings, PASSWORDS, on_server or {}).resolve(
        {name: {"compose.yml (api)"} for name in needed}, environ or {})


def test_password_sources_in_order():
    assert choose("P", {"P": "env"}, {"P": "server"}) == ("env", PASSWORD_SOURCES[0])
    assert choose("P", {}, {"P": "server"}) == ("server", PASSWORD_SOURCES[1])
    value, source = choose("P", {}, {})
    assert source == PASSWORD_SOURCES[2] and len(value) == 44


def test_extra_variables_settings_then_declared_secrets_from_environment_then_server(settings):
    settings = replace(settings, app_env={"PLAIN": "from-settings"}, app_secrets=["TOKEN", "KEPT"])
    result = resolve(settings, ["PLAIN", "TOKEN", "KEPT"],
                     environ={"PLAIN": "env-loses", "TOKEN": "from-environment-123"},
                     on_server={"KEPT": "kept-from-server-456", "TOKEN": "server-loses"})
    assert result.problems == []
    assert result.values["PLAIN"] == "from-settings"
    assert result.values["TOKEN"] == "from-environment-123" and result.values["KEPT"] == "kept-from-server-456"
    assert result.sources["KEPT"] == "the server" and result.sources["TOKEN"] == "the environment"
    assert {"TOKEN", "KEPT", "POSTGRES_PASSWORD", "POSTGRES_APP_PASSWORD"} <= result.secret
    assert "PLAIN" not in result.secret and "DOMAIN" not in result.secret


def test_a_variable_nothing_provides_names_itself_and_both_ways_to_set_it(settings):
    result = resolve(settings, ["SESSION_SECRET"])
    assert result.problems == [
        "SESSION_SECRET (asked for by compose.yml (api)) has no value: set it in app_env for a plain value "
        "(--data or group_data), or declare it in app_secrets and export SESSION_SECRET=... before running pyinfra "
        "for a secret"
    ]


def test_an_exported_variable_the_operator_did_not_declare_is_never_copied(settings):
    """The app's repository asks for a variable the operator exported for another reason:
    refused, its value nowhere, and the problem says why."""
    leaked = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    result = resolve(settings, ["AWS_SECRET_ACCESS_KEY"], environ={"AWS_SECRET_ACCESS_KEY": leaked})
    assert "AWS_SECRET_ACCESS_KEY" not in result.values
    assert len(result.problems) == 1
    assert ("AWS_SECRET_ACCESS_KEY is exported in your environment, but the deploy never copies a variable you did "
            "not declare: it was not given to the app") in result.problems[0]
    assert leaked not in repr(result) and leaked not in " ".join(result.problems)


def test_a_value_kept_on_the_server_needs_the_declaration_too(settings):
    result = resolve(settings, ["OLD_TOKEN"], on_server={"OLD_TOKEN": "kept-from-an-earlier-deploy"})
    assert "OLD_TOKEN" not in result.values
    assert "The server's .env.production holds a value from an earlier deploy: declare it in app_secrets" \
        in result.problems[0]


def test_the_deploys_own_secrets_never_fill_the_apps_variables(settings):
    settings = replace(settings, app_secrets=["TOKEN"])
    environ = {"RESTIC_PASSWORD": "restic-" + "x7" * 20, "SRQ_HPN_MONITOR_WEBHOOK_URL": "https://hooks.example/T0/B0"}
    result = resolve(settings, ["RESTIC_PASSWORD", "SRQ_HPN_MONITOR_WEBHOOK_URL"], environ=environ)
    assert "RESTIC_PASSWORD" not in result.values and "SRQ_HPN_MONITOR_WEBHOOK_URL" not in result.values
    assert result.problems[0].startswith(
        "RESTIC_PASSWORD (asked for by compose.yml (api)) is the deploy's own secret (the off-server copy's "
        "password): it is never given to the app")
    assert "SRQ_HPN_MONITOR_WEBHOOK_URL (asked for by compose.yml (api)) is the deploy's own secret" in result.problems[1]


def test_a_declared_secret_without_a_value_says_so(settings):
    result = resolve(replace(settings, app_secrets=["MAIL_TOKEN"]), ["MAIL_TOKEN"])
    assert result.problems == [
        "MAIL_TOKEN (asked for by compose.yml (api)) is declared in app_secrets but has no value: export "
        "MAIL_TOKEN=... before running pyinfra (the server's .env.production has none either)"]


def test_where_each_value_came_from_names_only(settings):
    settings = replace(settings, app_env={"SITE_NAME": "Harbor"}, app_secrets=["TOKEN", "KEPT"])
    result = resolve(settings, ["SITE_NAME", "TOKEN", "KEPT", "DATABASE_URL"], environ={"TOKEN": "tok-" + "9" * 20},
                     on_server={"KEPT": "kept-" + "8" * 20})
    line = EnvSources.origins(result)
    assert line == ("The app's variables: KEPT from kept from the server (app_secrets); "
                    "SITE_NAME from app_env; TOKEN from your environment (app_secrets)")
    assert "9999" not in line and "8888" not in line and "Harbor" not in line


def test_bad_secret_values_are_refused_without_being_shown(settings):
    result = resolve(replace(settings, app_secrets=["A", "B"]), ["A", "B"], environ={"A": "has space", "B": "changeme"})
    assert result.problems == [
        "A must not contain spaces, quotes, backslashes or control characters (from the environment)",
        "B is a known default or placeholder (from the environment)",
    ]
    assert "has space" not in " ".join(result.problems)


def test_guide_variables_always_present_urls_only_when_asked(settings):
    result = resolve(settings, [])
    assert list(result.values) == ["DOMAIN", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_APP_USER",
                                   "POSTGRES_APP_PASSWORD", "NEXT_PUBLIC_API_BASE_URL"]
    assert "DATABASE_URL_ADMIN" in resolve(settings, ["DATABASE_URL_ADMIN"]).values
