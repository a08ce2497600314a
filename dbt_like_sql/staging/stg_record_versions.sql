-- Every distinct record version the lake holds: one row per (company, entity, id, content hash).
-- The writer stores a version again when a record returns to an earlier content; the payloads are
-- then identical by construction, so the first one seen is kept.
-- #UNIQUE_BY(realm_id, entity, record_id, content_hash)
with

source as (
    select * from lake.versions
),

renamed as (
    select
        realm_id,
        entity,
        id as record_id,
        content_hash,
        snapshot_id as first_snapshot_id,
        sync_token,
        last_updated_at,
        active as is_active,
        txn_date,
        total_amt as total_amount,
        display_name,
        blob_sha256,
        payload::json as payload,
    from source
),

final as (
    select * from renamed
    qualify row_number() over (
        partition by realm_id, entity, record_id, content_hash order by first_snapshot_id
    ) = 1
)

select
    realm_id,  -- #NO_NULLS
    entity,  -- #NO_NULLS
    record_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    last_updated_at,
    is_active,
    txn_date,
    total_amount,
    display_name,
    blob_sha256,
    payload,  -- #NO_NULLS
from final
