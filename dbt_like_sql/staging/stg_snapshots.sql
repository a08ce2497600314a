-- One row per committed snapshot of every company (live, or retired by retention), straight from
-- the commit records (lake/FORMAT.md "Commit records"). Totals are the writer's own counts.
-- #UNIQUE_BY(realm_id, snapshot_id)
with

source as (
    select * from lake.commits
),

renamed as (
    select
        realm_id,
        snapshot_id,
        parent_id as parent_snapshot_id,
        kind as snapshot_kind,
        status,
        server_time as server_at,
        committed_at,
        company_name,
        (record->>'changed_since')::timestamptz as changed_since_at,
        (record->'totals'->>'live')::bigint as live_records,
        (record->'totals'->>'upserts')::bigint as upserts,
        (record->'totals'->>'deletes')::bigint as deletes,
        (record->'totals'->>'versions_written')::bigint as versions_written,
        (record->'totals'->>'bytes')::bigint as bytes_written,
        (record->'totals'->>'api_calls')::bigint as api_calls,
        (record->'totals'->>'duration_s')::double as duration_seconds,
        coalesce((record->'attachments'->>'count')::bigint, 0) as attachments,
        record->'entities' as entities_json,
        coalesce(record->'reports', '[]'::json) as reports_json,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    snapshot_id,  -- #NO_NULLS
    parent_snapshot_id,
    snapshot_kind,  -- #ACCEPTED_VALUES('full', 'incremental')
    status,  -- #ACCEPTED_VALUES('live', 'retired')
    server_at,  -- #NO_NULLS
    committed_at,
    changed_since_at,
    company_name,
    live_records,
    upserts,
    deletes,
    versions_written,
    bytes_written,
    api_calls,
    duration_seconds,
    attachments,
    entities_json,
    reports_json,
from final
