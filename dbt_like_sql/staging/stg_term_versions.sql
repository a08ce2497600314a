-- materialized: incremental
-- incremental_key: realm_id, term_id, content_hash
-- Payment terms, typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Term', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, term_id, content_hash)
with

source as (
    select * from delta.stg_record_versions
    where entity = 'Term'
),

renamed as (
    select
        realm_id,
        record_id as term_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        payload->>'$.Name' as name,
        is_active,
        (payload->>'$.DueDays')::integer as due_days,
        (payload->>'$.DiscountPercent')::decimal(9,4) as discount_percent,
        (payload->>'$.DiscountDays')::integer as discount_days,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    term_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    name,
    is_active,
    due_days,
    discount_percent,
    discount_days,
    created_at,
    last_updated_at,
from final
