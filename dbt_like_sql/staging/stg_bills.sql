-- Bills (vendor invoices), typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Bill', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, bill_id, content_hash)
with

source as (
    select * from staging.stg_record_versions
    where entity = 'Bill'
),

renamed as (
    select
        realm_id,
        record_id as bill_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        payload->>'$.DocNumber' as doc_number,
        txn_date,
        payload->>'$.CurrencyRef.value' as currency_code,
        (payload->>'$.ExchangeRate')::decimal(18,6) as exchange_rate,
        payload->>'$.PrivateNote' as private_note,
        payload->>'$.VendorRef.value' as vendor_id,
        payload->>'$.VendorRef.name' as vendor_name,
        total_amount,
        payload->>'$.APAccountRef.value' as ap_account_id,
        payload->>'$.DepartmentRef.value' as department_id,
        (payload->>'$.DueDate')::date as due_date,
        (payload->>'$.Balance')::decimal(18,2) as balance,
        payload->>'$.SalesTermRef.value' as sales_term_id,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    bill_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    doc_number,
    txn_date,
    currency_code,
    exchange_rate,
    private_note,
    vendor_id,
    vendor_name,
    total_amount,
    ap_account_id,
    department_id,
    due_date,
    balance,
    sales_term_id,
    created_at,
    last_updated_at,
from final
