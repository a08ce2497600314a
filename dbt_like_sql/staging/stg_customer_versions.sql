-- materialized: incremental
-- incremental_key: realm_id, customer_id, content_hash
-- Customers (and jobs: sub-customers with a parent), typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Customer', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, customer_id, content_hash)
with

source as (
    select * from delta.stg_record_versions
    where entity = 'Customer'
),

renamed as (
    select
        realm_id,
        record_id as customer_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        payload->>'$.DisplayName' as display_name,
        payload->>'$.CompanyName' as company_name,
        payload->>'$.GivenName' as given_name,
        payload->>'$.FamilyName' as family_name,
        payload->>'$.FullyQualifiedName' as fully_qualified_name,
        payload->>'$.ParentRef.value' as parent_customer_id,
        (payload->>'$.Job')::boolean as is_job,
        is_active,
        (payload->>'$.Taxable')::boolean as is_taxable,
        (payload->>'$.Balance')::decimal(18,2) as balance,
        (payload->>'$.BalanceWithJobs')::decimal(18,2) as balance_with_jobs,
        payload->>'$.CurrencyRef.value' as currency_code,
        payload->>'$.PrimaryEmailAddr.Address' as email,
        payload->>'$.PrimaryPhone.FreeFormNumber' as phone,
        payload->>'$.BillAddr.City' as billing_city,
        payload->>'$.BillAddr.CountrySubDivisionCode' as billing_region,
        payload->>'$.BillAddr.PostalCode' as billing_postal_code,
        payload->>'$.SalesTermRef.value' as sales_term_id,
        payload->>'$.PaymentMethodRef.value' as payment_method_id,
        payload->>'$.ARAccountRef.value' as ar_account_id,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    customer_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    display_name,
    company_name,
    given_name,
    family_name,
    fully_qualified_name,
    parent_customer_id,
    is_job,
    is_active,
    is_taxable,
    balance,
    balance_with_jobs,
    currency_code,
    email,
    phone,
    billing_city,
    billing_region,
    billing_postal_code,
    sales_term_id,
    payment_method_id,
    ar_account_id,
    created_at,
    last_updated_at,
from final
