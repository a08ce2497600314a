"""The environment rule (issue #18) and the one base URL of API and OAuth (issue #17 item 8)."""

from __future__ import annotations

import pytest

from qbo_pipeline.config import ConfigError, Endpoints, Environment, Settings


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
