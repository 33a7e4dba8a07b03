import pytest

from tasks.settings import Settings, load_defaults, with_defaults

SAMPLE = {
    "srq_hpn_domain": "example.com",
    "caddy_acme_email": "ops@example.com",
}


@pytest.fixture
def defaults():
    return load_defaults()


@pytest.fixture
def settings(defaults):
    return Settings.from_data(with_defaults(SAMPLE, defaults))
