"""Settings are read once from the environment, with defaults, and refuse values they cannot use."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline_service.errors import Code, OfflineServiceError
from offline_service.settings import Settings


def test_trial_settings_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.trial_origins == ()
    assert settings.trial_rate_per_minute == 10
    assert settings.trial_daily_cap == 50


def test_trial_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "OFFLINE_SERVICE_TRIAL_ORIGINS": " https://vendor.example ,null,, ",
            "OFFLINE_SERVICE_TRIAL_RATE": "3",
            "OFFLINE_SERVICE_TRIAL_DAILY_CAP": "7",
        }
    )
    assert settings.trial_origins == ("https://vendor.example", "null")
    assert settings.trial_rate_per_minute == 3
    assert settings.trial_daily_cap == 7


@pytest.mark.parametrize("value", ["0", "-1", "ten", "1.5", ""])
def test_a_daily_cap_that_is_not_a_positive_whole_number_is_refused(value: str) -> None:
    with pytest.raises(OfflineServiceError) as info:
        Settings.from_env({"OFFLINE_SERVICE_TRIAL_DAILY_CAP": value})
    assert info.value.code is Code.INVALID_ARGUMENT


def test_observability_settings_defaults_and_values(tmp_path: Path) -> None:
    default = Settings.from_env({})
    assert default.metrics_token is None and default.log_format == "text" and default.metrics_dir is None
    settings = Settings.from_env(
        {
            "OFFLINE_SERVICE_METRICS_TOKEN": " 0123456789abcdef0123 ",
            "OFFLINE_SERVICE_LOG_FORMAT": "JSON",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        }
    )
    assert settings.metrics_token == "0123456789abcdef0123" and settings.log_format == "json"
    assert settings.metrics_dir == tmp_path
    assert "0123456789abcdef0123" not in repr(settings)


@pytest.mark.parametrize(
    "env",
    [
        {"OFFLINE_SERVICE_METRICS_TOKEN": "short"},
        {"OFFLINE_SERVICE_METRICS_TOKEN": "with a space in the middle!"},
        {"OFFLINE_SERVICE_METRICS_TOKEN": "x" * 201},
        {"OFFLINE_SERVICE_METRICS_TOKEN": "ünïcödé-token-0123456789"},
        {"OFFLINE_SERVICE_LOG_FORMAT": "xml"},
        {"PROMETHEUS_MULTIPROC_DIR": "/nonexistent/metrics"},
    ],
)
def test_observability_settings_that_cannot_be_used_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(OfflineServiceError) as refused:
        Settings.from_env(env)
    assert refused.value.code is Code.INVALID_ARGUMENT
