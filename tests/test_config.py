"""The application factory and configuration from the environment."""

from __future__ import annotations

import pytest

from clinic_finder import create_app
from clinic_finder.config import (
    DEFAULT_SECRET_KEY,
    ConfigError,
    config_from_environment,
    normalise_database_url,
)


def test_factory_defaults_to_sqlite_in_instance_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app()
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    assert uri.startswith("sqlite:///")
    assert uri.endswith("/instance/clinic_finder.sqlite3")
    assert app.instance_path in uri


def test_factory_takes_explicit_config_over_environment(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/from-env.sqlite3")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:////tmp/explicit.sqlite3"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:////tmp/explicit.sqlite3"


def test_environment_sets_database_and_tiles():
    config = config_from_environment(
        {
            "DATABASE_URL": "postgres://u@db.example/clinics",
            "MAP_TILES_URL": "https://tiles.example/{z}/{x}/{y}.png",
            "MAP_TILES_ATTRIBUTION": "Tiles by example",
        }
    )
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.example/clinics"
    assert config["MAP_TILES_URL"] == "https://tiles.example/{z}/{x}/{y}.png"
    assert config["MAP_TILES_ATTRIBUTION"] == "Tiles by example"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://a@h/d", "postgresql+psycopg://a@h/d"),
        ("postgresql://a@h/d", "postgresql+psycopg://a@h/d"),
        ("postgresql+psycopg://a@h/d", "postgresql+psycopg://a@h/d"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_normalise_database_url_uses_psycopg(given, expected):
    assert normalise_database_url(given) == expected


# Everything production needs; each refusal test takes one away.
PRODUCTION = {
    "APP_ENV": "production",
    "DATABASE_URL": "sqlite:////tmp/prod.sqlite3",
    "SECRET_KEY": "x" * 64,
    "TRUSTED_HOSTS": "finnklinikk.example",
    "RATELIMIT_STORAGE_URI": "memory://",  # on purpose: the tests run one process
    "PUBLIC_BASE_URL": "https://finnklinikk.example",
}


@pytest.fixture
def production(monkeypatch):
    """The environment of a production site that starts; return a setter for changes."""
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)

    def change(name: str, value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)

    return change


def test_production_refuses_default_secret_key(production):
    production("SECRET_KEY", None)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()
    production("SECRET_KEY", DEFAULT_SECRET_KEY)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_production_refuses_to_start_without_trusted_hosts(production):
    production("TRUSTED_HOSTS", None)
    with pytest.raises(ConfigError, match="TRUSTED_HOSTS"):
        create_app()


@pytest.mark.parametrize("value", [None, "", "  "])
def test_production_refuses_to_start_without_rate_limit_storage(production, value):
    production("RATELIMIT_STORAGE_URI", value)
    with pytest.raises(ConfigError, match="RATELIMIT_STORAGE_URI"):
        create_app()


@pytest.mark.parametrize("uri", ["memory://", "redis://redis.internal:6379/0"])
def test_production_takes_rate_limit_storage_it_is_given(production, uri):
    production("RATELIMIT_STORAGE_URI", uri)
    assert create_app().config["RATELIMIT_STORAGE_URI"] == uri


def test_development_counts_rate_limits_in_memory_by_default():
    assert config_from_environment({})["RATELIMIT_STORAGE_URI"] == "memory://"


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "http://finnklinikk.example",
        "finnklinikk.example",
        "https://",
        "https:///path",
        "https://finnklinikk.example?x=1",
        "https://user:secret@finnklinikk.example",
        " https://finnklinikk.example",
        "https://[::1",
        "javascript:alert(1)",
    ],
)
def test_production_refuses_to_start_without_https_public_base_url(production, url):
    production("PUBLIC_BASE_URL", url)
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        create_app()


@pytest.mark.parametrize(
    "url", ["https://finnklinikk.example", "https://finnklinikk.example:8443/finn/"]
)
def test_production_takes_an_https_public_base_url(production, url):
    production("PUBLIC_BASE_URL", url)
    assert create_app().config["PUBLIC_BASE_URL"] == url


def test_production_answers_only_trusted_hosts(production):
    app = create_app()
    client = app.test_client()
    assert client.get("/", base_url="https://evil.example").status_code == 400
    assert client.get("/", base_url="https://finnklinikk.example").status_code == 200


def test_production_sets_secure_session_cookie(production):
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_development_cookie_is_not_secure_only():
    assert config_from_environment({})["SESSION_COOKIE_SECURE"] is False


def test_production_refuses_a_cheaper_password_hash(production):
    with pytest.raises(ConfigError, match="scrypt"):
        create_app({"PASSWORD_HASH_METHOD": "scrypt:1024:8:1"})
