-- materialized: incremental
-- incremental_key: realm_id, vendor_id, content_hash
-- Vendors, typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Vendor', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, vendor_id, content_hash)
with

source as (
    select * from delta.stg_record_versions
    where entity = 'Vendor'
),

renamed as (
    select
        realm_id,
        record_id as vendor_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        payload->>'$.DisplayName' as display_name,
        payload->>'$.CompanyName' as company_name,
        payload->>'$.GivenName' as given_name,
        payload->>'$.FamilyName' as family_name,
        is_active,
        (payload->>'$.Vendor1099')::boolean as is_1099,
        (payload->>'$.Balance')::decimal(18,2) as balance,
        payload->>'$.CurrencyRef.value' as currency_code,
        payload->>'$.PrimaryEmailAddr.Address' as email,
        payload->>'$.PrimaryPhone.FreeFormNumber' as phone,
        payload->>'$.AcctNum' as account_number,
        payload->>'$.TermRef.value' as term_id,
        payload->>'$.APAccountRef.value' as ap_account_id,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    vendor_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    display_name,
    company_name,
    given_name,
    family_name,
    is_active,
    is_1099,
    balance,
    currency_code,
    email,
    phone,
    account_number,
    term_id,
    ap_account_id,
    created_at,
    last_updated_at,
from final
