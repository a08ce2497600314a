-- materialized: incremental
-- incremental_key: realm_id, class_id, content_hash
-- Classes, typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Class', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, class_id, content_hash)
with

source as (
    select * from delta.stg_record_versions
    where entity = 'Class'
),

renamed as (
    select
        realm_id,
        record_id as class_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        payload->>'$.Name' as name,
        is_active,
        payload->>'$.FullyQualifiedName' as fully_qualified_name,
        payload->>'$.ParentRef.value' as parent_class_id,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    class_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    name,
    is_active,
    fully_qualified_name,
    parent_class_id,
    created_at,
    last_updated_at,
from final
