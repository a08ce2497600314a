"""deploy/'s Kubernetes and Celery examples validate against the Dagster packages they name.

There is no cluster, broker or Postgres here, so nothing is started: each instance YAML must
pass Dagster's instance schema, each configurable class it names (the Postgres storage, the
Kubernetes run launcher, the S3 compute log manager) must import from its package (dagster-k8s,
dagster-postgres, dagster-aws, all of Dagster 1.13's 0.29 line) and accept its config, and the
Celery executor configuration in deploy/README.md must pass dagster-celery's executor schema.
Those packages are the extra ``deploy`` (about 110 MB), so this runs in ``make deploy-check``
(marker ``deploy``), not in ``make test``.
"""

from __future__ import annotations

import ast
import importlib
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
EXAMPLES = ("dagster.k8s.yaml", "dagster.celery.yaml")
pytestmark = pytest.mark.deploy
STORAGE_CLASSES = {"postgres": ("dagster_postgres", "DagsterPostgresStorage")}


def _errors(config_type: Any, value: Any) -> list[str]:
    result = validate_config(config_type, value)
    return [] if result.success else [e.message for e in result.errors or []]


def _classes(config: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """``(section, module, class, config)`` of every configurable class the instance names."""
    found = []
    for section, value in config.items():
        if isinstance(value, dict) and "module" in value and "class" in value:
            found.append((section, value["module"], value["class"], value.get("config") or {}))
    for kind, value in (config.get("storage") or {}).items():
        module, name = STORAGE_CLASSES[kind]
        found.append((f"storage.{kind}", module, name, value))
    return found


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_example_instance_passes_dagsters_schema(name: str, tmp_path: Path) -> None:
    shutil.copyfile(DEPLOY / name, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # raises naming any invalid field
    assert config["concurrency"]["runs"]["max_concurrent_runs"] >= 1


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_class_the_example_names_accepts_its_config(name: str) -> None:
    config = yaml.safe_load((DEPLOY / name).read_text())
    classes = _classes(config)
    assert {section for section, *_ in classes} >= {"storage.postgres"}
    for section, module, class_name, value in classes:
        klass = getattr(importlib.import_module(module), class_name)
        assert _errors(klass.config_type(), value) == [], f"{name}: {section} ({class_name})"


def test_the_kubernetes_example_launches_runs_as_kubernetes_jobs() -> None:
    config = yaml.safe_load((DEPLOY / "dagster.k8s.yaml").read_text())
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    from dagster_k8s import K8sRunLauncher

    # Secrets travel as Kubernetes Secrets, never as values in the instance.
    assert launcher["config"]["env_secrets"]
    assert "env_vars" not in launcher["config"]
    # A mistyped field is refused, so the test above would catch a drifted example.
    broken = {**launcher["config"], "job_namespaces": "qbo"}
    assert _errors(K8sRunLauncher.config_type(), broken)


def _readme_celery_config() -> dict[str, Any]:
    text = (DEPLOY / "README.md").read_text()
    match = re.search(r"celery_executor\.configured\(\s*(\{.*?\})\s*\)", text, re.DOTALL)
    assert match, "deploy/README.md shows no celery_executor.configured({...})"
    return ast.literal_eval(match.group(1))


def test_the_celery_executor_config_of_the_readme_passes_dagster_celery() -> None:
    from dagster_celery import celery_executor

    config = _readme_celery_config()
    schema = celery_executor.config_schema.config_type
    assert _errors(schema, config) == []
    assert _errors(schema, {**config, "brokers": "redis://"})  # a typo is refused
    # The limits the Celery deployment keeps are the project's own.
    celery = yaml.safe_load((DEPLOY / "dagster.celery.yaml").read_text())
    project = yaml.safe_load((REPO / "qbo_pipeline" / "defs" / "dagster.yaml").read_text())
    limits = celery["concurrency"]["runs"]["tag_concurrency_limits"]
    assert limits == project["concurrency"]["runs"]["tag_concurrency_limits"]
