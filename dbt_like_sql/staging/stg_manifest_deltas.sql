-- How each committed snapshot's set of live records differs from its parent's: one row per
-- (snapshot, entity, id) with op 'upsert' (new or changed, with the live content hash) or 'delete'.
-- #UNIQUE_BY(realm_id, snapshot_id, entity, record_id)
with

source as (
    select * from lake.manifest_deltas
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
