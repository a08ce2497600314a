-- materialized: incremental
-- incremental_key: realm_id, employee_id, content_hash
-- Employees, typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Employee', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, employee_id, content_hash)
with

source as (
    select * from delta.stg_record_versions
    where entity = 'Employee'
),

renamed as (
    select
        realm_id,
        record_id as employee_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        payload->>'$.DisplayName' as display_name,
        payload->>'$.GivenName' as given_name,
        payload->>'$.FamilyName' as family_name,
        is_active,
        payload->>'$.PrimaryEmailAddr.Address' as email,
        (payload->>'$.HiredDate')::date as hired_on,
        (payload->>'$.ReleasedDate')::date as released_on,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    employee_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    display_name,
    given_name,
    family_name,
    is_active,
    email,
    hired_on,
    released_on,
    created_at,
    last_updated_at,
from final
