-- How each committed snapshot's set of live records differs from its parent's: one row per
-- (snapshot, entity, id) with op 'upsert' (new or changed, with the live content hash) or 'delete'.
-- Incremental: a build after new snapshots reads only their deltas (lake.new_manifest_deltas) and
-- appends them; a committed snapshot's deltas never change.
-- materialized: incremental
-- incremental_key: realm_id, snapshot_id
-- #UNIQUE_BY(realm_id, snapshot_id, entity, record_id)
with

source as (
    select * from lake.new_manifest_deltas
),

renamed as (
    select
        realm_id,
        snapshot_id,
        entity,
        id as record_id,
        op,
        content_hash,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    snapshot_id,  -- #NO_NULLS
    entity,  -- #NO_NULLS
    record_id,  -- #NO_NULLS
    op,  -- #ACCEPTED_VALUES('upsert', 'delete')
    content_hash,
from final
