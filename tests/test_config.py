"""The environment rule (issue #18) and the one base URL of API and OAuth (issue #17 item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qbo_pipeline import config
from qbo_pipeline.config import ConfigError, Endpoints, Environment, Secret, Settings


def test_with_no_configuration_at_all_the_settings_refuse_saying_what_to_set() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"QBO_DATA_DIR": "/tmp/nowhere"})
    message = str(refused.value)
    assert "QBO_ENVIRONMENT=embedded" in message
    assert "QBO_CLIENT_ID" in message and "QBO_CLIENT_SECRET" in message


def test_the_embedded_environment_is_chosen_explicitly() -> None:
    settings = Settings.from_env({"QBO_ENVIRONMENT": "embedded"})
    assert settings.environment is Environment.EMBEDDED
    keys = {"QBO_CLIENT_ID": "app", "QBO_CLIENT_SECRET": "secret"}
    assert Settings.from_env(keys).environment is Environment.PRODUCTION
    assert (
        Settings.from_env({**keys, "QBO_ENVIRONMENT": "sandbox"}).environment is Environment.SANDBOX
    )


def test_a_command_that_is_the_embedded_environment_chooses_it_itself() -> None:
    settings = Settings.from_env({"QBO_DATA_DIR": "d"}, environment=Environment.EMBEDDED)
    assert settings.environment is Environment.EMBEDDED
    assert str(settings.sandbox_state_path) == "d/sandbox/sandbox.sqlite3"


def test_one_setting_is_the_base_of_the_api_and_of_oauth() -> None:
    settings = Settings.from_env(
        {"QBO_ENVIRONMENT": "embedded", "QBO_BASE_URL": "http://127.0.0.1:8080/"}
    )
    assert settings.base_url == "http://127.0.0.1:8080"
    for environment in Environment:
        endpoints = Endpoints.for_environment(environment, base_url="http://127.0.0.1:8080")
        assert endpoints.api_base == "http://127.0.0.1:8080"
        for url in (endpoints.authorize, endpoints.token, endpoints.revoke):
            assert url.startswith("http://127.0.0.1:8080/"), (environment, url)
    # Intuit's own API host is no override: OAuth stays with Intuit.
    intuit = Endpoints.for_environment(
        Environment.PRODUCTION, base_url="https://quickbooks.api.intuit.com"
    )
    assert intuit.token == "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"


def test_the_old_api_only_variable_is_refused_naming_the_one_setting() -> None:
    with pytest.raises(ConfigError, match="QBO_BASE_URL"):
        Settings.from_env({"QBO_ENVIRONMENT": "embedded", "QBO_API_BASE_URL": "http://h:1"})


def test_the_settings_that_do_not_depend_on_which_qbo_is_used_need_no_environment() -> None:
    # One reader each, read where the setting is used (issue #21): none needs QBO_ENVIRONMENT.
    env = {
        "QBO_PIPELINE_PASSPHRASE": " pass phrase ",
        "QBO_PIPELINE_NEW_PASSPHRASE": "next",
        "QBO_CLIENT_SECRET": "app-secret",
        "QBO_DEBUG": " Yes ",
        "QBO_SQL_DIR": " /models ",
        "QBO_WAREHOUSE_MEMORY_LIMIT": "2GB",
        "QBO_FRESHNESS_HOURS": "12.5",
        "QBO_BACKUP_CRON": "0 3 * * *",
    }
    assert config.passphrase(env) == Secret(" pass phrase "), "a passphrase is taken as typed"
    assert config.passphrase(env, new=True) == Secret("next")
    assert config.debug(env) is True
    assert config.sql_dir(env) == "/models"
    assert config.warehouse_memory_limit(env) == "2GB"
    assert config.freshness_hours(env) == 12.5
    assert config.cron(config.BACKUP_CRON_VAR, "0 2 * * *", env) == "0 3 * * *"
    assert config.cron(config.FRESHNESS_CRON_VAR, "15 * * * *", env) == "15 * * * *"
    assert sorted(config.secret_values(env)) == [" pass phrase ", "app-secret", "next"]
    assert config.subset(["QBO_DEBUG", "QBO_DATA_DIR"], env) == {"QBO_DEBUG": " Yes "}
    assert config.is_set("QBO_SQL_DIR", env) and not config.is_set("QBO_DATA_DIR", env)
    empty: dict[str, str] = {}
    assert config.passphrase(empty) is None and config.debug(empty) is False
    assert config.sql_dir(empty) is None and config.warehouse_memory_limit(empty) is None
    assert config.freshness_hours(empty) == 26.0 and config.secret_values(empty) == []


@pytest.mark.parametrize("raw", ["-3", "0", "soon", "nan", "inf", ""])
def test_a_freshness_that_is_not_a_positive_number_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match=f"QBO_FRESHNESS_HOURS={raw!r}"):
        config.freshness_hours({"QBO_FRESHNESS_HOURS": raw})


def test_the_embedded_sandbox_s_default_oauth_keys_are_written_once() -> None:
    from qbo_pipeline.qbo.connect import app_credentials
    from qbo_pipeline.sandbox import oauth

    assert (oauth.DEFAULT_CLIENT_ID, oauth.DEFAULT_CLIENT_SECRET) == (
        config.EMBEDDED_CLIENT_ID,
        config.EMBEDDED_CLIENT_SECRET,
    )
    settings = Settings.from_env({"QBO_ENVIRONMENT": "embedded"})
    keys = app_credentials(settings, Environment.EMBEDDED)
    assert keys.client_id == config.EMBEDDED_CLIENT_ID
    assert keys.client_secret == Secret(config.EMBEDDED_CLIENT_SECRET)
    package = Path(config.__file__).parent
    written = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if '"qbo-sandbox-secret"' in path.read_text()
    ]
    assert written == ["config.py"]


def test_the_warehouse_compact_growth_is_a_number_above_one_or_off() -> None:
    var = "QBO_WAREHOUSE_COMPACT_GROWTH"
    assert config.warehouse_compact_growth({}) == config.DEFAULT_COMPACT_GROWTH == 1.5
    assert config.warehouse_compact_growth({var: " "}) == 1.5
    assert config.warehouse_compact_growth({var: "1.01"}) == 1.01
    assert config.warehouse_compact_growth({var: " 3 "}) == 3.0
    for off in ("off", "OFF", "0", "0.0"):
        assert config.warehouse_compact_growth({var: off}) is None, off


@pytest.mark.parametrize("raw", ["1", "0.5", "-2", "never", "1.5x", "nan", "inf"])
def test_a_bad_warehouse_compact_growth_names_the_variable_and_the_value(raw: str) -> None:
    with pytest.raises(ConfigError, match=f"QBO_WAREHOUSE_COMPACT_GROWTH={raw!r} must be a number"):
        config.warehouse_compact_growth({"QBO_WAREHOUSE_COMPACT_GROWTH": raw})
