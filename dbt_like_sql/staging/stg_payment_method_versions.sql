-- materialized: incremental
-- incremental_key: realm_id, payment_method_id, content_hash
-- Payment methods, typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('PaymentMethod', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, payment_method_id, content_hash)
with

source as (
    select * from delta.stg_record_versions
    where entity = 'PaymentMethod'
),

renamed as (
    select
        realm_id,
        record_id as payment_method_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        payload->>'$.Name' as name,
        is_active,
        payload->>'$.Type' as payment_method_type,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    payment_method_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    name,
    is_active,
    payment_method_type,
    created_at,
    last_updated_at,
from final
