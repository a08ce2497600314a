-- One row per committed snapshot and entity, from the commit record's per-entity statistics:
-- how the entity was read (full, cdc, unchanged), QBO's COUNT(*) and what the snapshot wrote.
-- #UNIQUE_BY(realm_id, snapshot_id, entity)
with

source as (
    select
        realm_id,
        snapshot_id,
        entities_json,
    from staging.stg_snapshots
),

renamed as (
    select
        source.realm_id,
        source.snapshot_id,
        e.key as entity,
        e.value->>'mode' as read_mode,
        (e.value->>'live')::bigint as live_records,
        (e.value->>'qbo_count')::bigint as qbo_count,
        (e.value->>'fetched')::bigint as fetched,
        (e.value->>'upserts')::bigint as upserts,
        (e.value->>'deletes')::bigint as deletes,
        (e.value->>'versions_written')::bigint as versions_written,
        (e.value->>'bytes')::bigint as bytes_written,
        e.value->>'digest' as digest,
    from source, json_each(source.entities_json) as e
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    snapshot_id,  -- #NO_NULLS
    entity,  -- #NO_NULLS
    read_mode,  -- #ACCEPTED_VALUES('full', 'cdc', 'unchanged')
    live_records,
    qbo_count,
    fetched,
    upserts,
    deletes,
    versions_written,
    bytes_written,
    digest,
from final
