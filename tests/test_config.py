"""The application factory and configuration from the environment."""

from __future__ import annotations

import time

import pytest
from flask.sessions import SecureCookieSessionInterface

from clinic_finder import create_app
from clinic_finder.config import (
    ConfigError,
    config_from_environment,
    normalise_database_url,
)

from .conftest import PRODUCTION_SECRET_KEY, config_for_tests, make_staff


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
    "SECRET_KEY": PRODUCTION_SECRET_KEY,
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


@pytest.mark.parametrize(
    "key",
    [
        None,
        "",
        "dev-only-not-secret",  # the fixed development key of old
        "short-but-random-9f3k2",
        "x" * 64,  # long, and nothing
        "ab" * 32,
        "password" * 8,
    ],
)
def test_production_refuses_a_missing_short_or_repetitive_secret_key(production, key):
    production("SECRET_KEY", key)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_production_takes_a_random_secret_key(production):
    assert create_app().config["SECRET_KEY"] == PRODUCTION_SECRET_KEY


@pytest.mark.parametrize("value", ["prod", "staging", "production2", "test"])
def test_an_unknown_app_env_is_refused_everywhere(monkeypatch, value):
    monkeypatch.setenv("APP_ENV", value)
    with pytest.raises(ConfigError, match="APP_ENV"):
        create_app()


@pytest.mark.parametrize("value", ["", "development", "Production"])
def test_app_env_takes_its_two_values_and_unset(production, value):
    production("APP_ENV", value)
    expected = "production" if value.lower() == "production" else "development"
    assert create_app().config["APP_ENV"] == expected


def test_development_without_secret_key_signs_with_a_key_of_this_process(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    key = config_from_environment({})["SECRET_KEY"]
    assert key == config_from_environment({})["SECRET_KEY"]  # one key per process
    assert len(key) >= 32 and key != "dev-only-not-secret"


def _forged_staff_cookie(app, key: str, user_id: int) -> str:
    """A session cookie as a signed-in staff member's, signed with ``key``."""
    forger = create_app(config_for_tests(app.config["SQLALCHEMY_DATABASE_URI"], SECRET_KEY=key))
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    now = time.time()
    return serializer.dumps(
        {
            "_user_id": f"{user_id}:1",
            "_fresh": True,
            "_permanent": True,
            "signed_in_at": now,
            "last_seen_at": now,
        }
    )


@pytest.mark.parametrize("key", ["dev-only-not-secret", "test-secret-key", ""])
def test_a_session_forged_with_a_fixed_string_is_refused_in_development(app, monkeypatch, key):
    """The review forged an admin session with the public development key."""
    admin_id = make_staff(app, "admin@clinic-finder.example", admin=True)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("APP_ENV", raising=False)
    # As `make run` starts it: no SECRET_KEY in the environment.
    served = create_app(
        {"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "GEOCODER": "none"}
    )
    client = served.test_client()
    client.set_cookie("session", _forged_staff_cookie(app, key or "x", admin_id))
    for path in ("/staff/requests", "/staff/privacy", "/staff/users", "/staff/audit"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/staff/sign-in"), path


def test_development_public_base_url_follows_port():
    assert config_from_environment({"PORT": "8080"})["PUBLIC_BASE_URL"] == ("http://127.0.0.1:8080")
    assert config_from_environment({})["PUBLIC_BASE_URL"] == "http://127.0.0.1:5000"


@pytest.mark.parametrize("port", ["0", "70000", "80a", "٨٠٨٠"])
def test_a_port_that_is_no_port_is_refused(port):
    with pytest.raises(ConfigError, match="PORT"):
        config_from_environment({"PORT": port})


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


HPR_URL = "https://ws.nhn.no/v2/HPR/Basic"


def test_hpr_licence_checks_are_off_by_default():
    config = config_from_environment({})
    assert config["HPR_URL"] is None
    assert (config["HPR_TIMEOUT_SECONDS"], config["HPR_REQUESTS_PER_SECOND"]) == (10.0, 5.0)
    assert create_app(config_for_tests("sqlite://")).extensions["hpr"] is None


def test_hpr_settings_come_from_the_environment():
    config = config_from_environment(
        {
            "HPR_URL": HPR_URL,
            "HPR_USERNAME": "clinic_finder",
            "HPR_PASSWORD": "s3cret",
            "HPR_TIMEOUT_SECONDS": "4.5",
            "HPR_REQUESTS_PER_SECOND": "2",
        }
    )
    assert config["HPR_URL"] == HPR_URL
    assert (config["HPR_USERNAME"], config["HPR_PASSWORD"]) == ("clinic_finder", "s3cret")
    assert (config["HPR_TIMEOUT_SECONDS"], config["HPR_REQUESTS_PER_SECOND"]) == (4.5, 2.0)


@pytest.mark.parametrize(
    ("url", "username", "password"),
    [
        ("http://ws.nhn.no/v2/HPR/Basic", "clinic_finder", "s3cret"),
        ("https://ws.nhn.no/v2/HPR/Basic?x=1", "clinic_finder", "s3cret"),
        (HPR_URL, None, "s3cret"),
        (HPR_URL, "clinic_finder", None),
    ],
)
def test_production_refuses_hpr_without_https_or_credentials(production, url, username, password):
    production("HPR_URL", url)
    production("HPR_USERNAME", username)
    production("HPR_PASSWORD", password)
    with pytest.raises(ConfigError, match="HPR_"):
        create_app()


def test_production_checks_licences_at_an_https_hpr_url_with_credentials(production):
    production("HPR_URL", HPR_URL)
    production("HPR_USERNAME", "clinic_finder")
    production("HPR_PASSWORD", "s3cret")
    client = create_app().extensions["hpr"]
    assert client is not None and client.url == HPR_URL


def test_development_may_check_licences_over_plain_http():
    app = create_app(config_for_tests("sqlite://", HPR_URL="http://127.0.0.1:8080/v2/HPR/Basic"))
    assert app.extensions["hpr"].url == "http://127.0.0.1:8080/v2/HPR/Basic"
