"""One asset per SQL model of ``dbt_like_sql/``, built by the models runner in one go.

The models, their materialisation and their dependencies come from the runner
(:func:`qbo_pipeline.models.runner.load_project`), which reads them from the SQL; models that read
the lake directly (``lake.versions``, ``lake.commits``, ...) depend on every ingest asset. The
multi-asset calls :func:`qbo_pipeline.models.warehouse.build_warehouse`, whose write-audit-publish
means that a failed model or column test publishes nothing: the analysts' tables stay as they
were. A subset builds the selected models (and what they read); the rest stay published.
"""

# No `from __future__ import annotations` here: Dagster reads the annotations of decorated
# functions (context, config and resource parameters) at definition time.

from collections.abc import Iterator
from typing import Any

import dagster as dg

from qbo_pipeline.config import ConfigError
from qbo_pipeline.defs.ingest.keys import ENTITY_KEYS
from qbo_pipeline.defs.resources import LakeResource
from qbo_pipeline.models.runner import Model, ModelError, code_version, load_project
from qbo_pipeline.models.warehouse import BuildError, BuildResult, build_warehouse, connect

PREFIX = "warehouse"
GROUP = "warehouse"


def model_asset_key(model_key: str) -> dg.AssetKey:
    """The asset key of a model named ``schema.name`` (``warehouse/marts/snapshots``)."""
    schema, name = model_key.split(".", 1)
    return dg.AssetKey([PREFIX, schema, name])


def model_key_of(key: dg.AssetKey) -> str:
    """The runner's ``schema.name`` of a warehouse asset key."""
    return f"{key.path[-2]}.{key.path[-1]}"


def describe(model: Model) -> str:
    """The model's header comment (its leading ``--`` lines), as one paragraph."""
    lines = []
    for line in model.sql.splitlines():
        text = line.strip()
        if not text.startswith("--"):
            break
        text = text.lstrip("-").strip()
        if text.startswith("#") or text.lower().startswith(("materialized:", "materialised:")):
            continue
        lines.append(text)
    return " ".join(lines).strip() or f"The {model.key} model of dbt_like_sql."


def model_specs() -> list[dg.AssetSpec]:
    """One spec per SQL model, with the dependencies the runner read from the SQL."""
    project = load_project()
    specs = []
    for model in project.models:
        deps: list[dg.AssetKey] = [model_asset_key(k) for k in sorted(model.depends_on)]
        if any(source.startswith("lake.") for source in model.sources):
            deps.extend(ENTITY_KEYS)
        specs.append(
            dg.AssetSpec(
                model_asset_key(model.key),
                deps=deps,
                description=describe(model),
                group_name=GROUP,
                kinds={"duckdb", "sql", model.materialized},
                code_version=code_version(model, project.macros),
                skippable=True,
                metadata={
                    "sql_file": str(model.path.relative_to(project.root.parent)),
                    "materialized": model.materialized,
                    "column_tests": ", ".join(t.label for t in model.tests) or "none",
                    "dagster/table_name": model.key,
                },
                tags={"qbo/layer": model.schema},
            )
        )
    return specs


def _column_schemas(result: BuildResult, keys: list[str]) -> dict[str, dg.TableSchema]:
    """Column names and types of the published relations, read back from the warehouse."""
    schemas: dict[str, list[dg.TableColumn]] = {k: [] for k in keys}
    con = connect(result.warehouse, read_only=True)
    try:
        rows = con.execute(
            "select table_schema || '.' || table_name, column_name, data_type "
            "from information_schema.columns where table_catalog = current_database() "
            "order by table_schema, table_name, ordinal_position"
        ).fetchall()
    finally:
        con.close()
    for relation, column, data_type in rows:
        if relation in schemas:
            schemas[relation].append(dg.TableColumn(column, data_type))
    return {k: dg.TableSchema(columns=v) for k, v in schemas.items() if v}


def _metadata(result: BuildResult, model: Any, schema: dg.TableSchema | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "materialized": model.materialized,
        "column_tests_passed": len(model.tests),
        "build_seconds": round(model.seconds, 3),
        "warehouse": str(result.warehouse),
        "lake": result.lake,
        "build_kind": result.kind,
        "build_reason": result.reason,
        "rows_inserted": model.rows_inserted,
        "warehouse_bytes": result.file_bytes,
        "warehouse_growth": round(result.growth, 3),
        "compacted": result.compacted,
        "compaction_reason": result.compaction_reason,
        # The build as a whole, as `warehouse build` sums it up.
        "models_rebuilt": result.models_rebuilt,
        "models_appended": result.models_appended,
        "models_kept": result.models_kept,
        "tests_run": result.tests_passed,
        "rows_appended": result.rows_appended,
        "warehouse_build_seconds": round(result.seconds, 3),
    }
    if model.rows is not None:  # a view is not counted in an incremental build
        metadata["dagster/row_count"] = model.rows
    if schema is not None:
        metadata["dagster/column_schema"] = schema
    return metadata


@dg.multi_asset(
    name="warehouse_models",
    specs=model_specs(),
    can_subset=True,
    pool="qbo_warehouse",
    description="Build the DuckDB warehouse from the lake: write, audit, publish atomically.",
)
def warehouse_models(
    context: dg.AssetExecutionContext, lake: LakeResource
) -> Iterator[dg.MaterializeResult]:
    """Build the selected models (with what they read) and publish them in one transaction."""
    wanted = sorted(model_key_of(k) for k in context.selected_asset_keys)
    every = len(wanted) == len(context.assets_def.keys)
    settings = lake.settings()
    context.log.info(
        f"building {'every model' if every else ', '.join(wanted)} from {settings.lake_url} "
        f"into {settings.warehouse_path}"
    )
    try:
        result = build_warehouse(
            settings.lake_url, settings.warehouse_path, select=() if every else wanted
        )
    except BuildError as exc:
        raise dg.Failure(
            description=f"the warehouse was not published (the previous tables stay): {exc}",
            metadata={"model": exc.model, "failures": "\n".join(exc.failures) or "-"},
        ) from None
    except (ModelError, ConfigError) as exc:
        raise dg.Failure(description=f"the warehouse could not be built: {exc}") from None
    schemas = _column_schemas(result, wanted)
    chosen = set(wanted)
    for model in result.models:  # build order: Dagster wants upstream models first
        if model.key in chosen:
            yield dg.MaterializeResult(
                asset_key=model_asset_key(model.key),
                metadata=_metadata(result, model, schemas.get(model.key)),
            )
