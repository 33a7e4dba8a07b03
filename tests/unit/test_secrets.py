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


def test_extra_variables_settings_then_environment_then_server(settings):
    settings = replace(settings, app_env={"PLAIN": "from-settings", "BOTH": "settings-win"})
    result = resolve(settings, ["PLAIN", "BOTH", "TOKEN", "KEPT"],
                     environ={"BOTH": "env-loses", "TOKEN": "from-environment-123"},
                     on_server={"KEPT": "kept-from-server-456", "TOKEN": "server-loses"})
    assert result.problems == []
    assert result.values["PLAIN"] == "from-settings" and result.values["BOTH"] == "settings-win"
    assert result.values["TOKEN"] == "from-environment-123" and result.values["KEPT"] == "kept-from-server-456"
    assert result.sources["KEPT"] == "the server"
    assert {"TOKEN", "KEPT", "POSTGRES_PASSWORD", "POSTGRES_APP_PASSWORD"} <= result.secret
    assert "PLAIN" not in result.secret and "DOMAIN" not in result.secret


def test_a_variable_nothing_provides_names_itself_and_where_to_set_it(settings):
    result = resolve(settings, ["SESSION_SECRET"])
    assert result.problems == [
        "SESSION_SECRET (asked for by compose.yml (api)) has no value: set it in app_env for a plain value "
        "(--data or group_data), or export SESSION_SECRET=... before running pyinfra for a secret"
    ]


def test_bad_secret_values_are_refused_without_being_shown(settings):
    result = resolve(settings, ["A", "B"], environ={"A": "has space", "B": "changeme"})
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
