-- Invoices, typed (total_amount includes tax; balance is what is still open).
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Invoice', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, invoice_id, content_hash)
with

source as (
    select * from staging.stg_record_versions
    where entity = 'Invoice'
),

renamed as (
    select
        realm_id,
        record_id as invoice_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        payload->>'$.DocNumber' as doc_number,
        txn_date,
        payload->>'$.CurrencyRef.value' as currency_code,
        (payload->>'$.ExchangeRate')::decimal(18,6) as exchange_rate,
        payload->>'$.PrivateNote' as private_note,
        payload->>'$.CustomerRef.value' as customer_id,
        payload->>'$.CustomerRef.name' as customer_name,
        total_amount,
        (payload->>'$.TxnTaxDetail.TotalTax')::decimal(18,2) as total_tax,
        payload->>'$.ClassRef.value' as class_id,
        payload->>'$.DepartmentRef.value' as department_id,
        payload->>'$.CustomerMemo.value' as customer_memo,
        payload->>'$.BillEmail.Address' as bill_email,
        (payload->>'$.DueDate')::date as due_date,
        (payload->>'$.Balance')::decimal(18,2) as balance,
        payload->>'$.SalesTermRef.value' as sales_term_id,
        payload->>'$.ARAccountRef.value' as ar_account_id,
        payload->>'$.DepositToAccountRef.value' as deposit_to_account_id,
        payload->>'$.EmailStatus' as email_status,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    invoice_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    doc_number,
    txn_date,
    currency_code,
    exchange_rate,
    private_note,
    customer_id,
    customer_name,
    total_amount,
    total_tax,
    class_id,
    department_id,
    customer_memo,
    bill_email,
    due_date,
    balance,
    sales_term_id,
    ar_account_id,
    deposit_to_account_id,
    email_status,
    created_at,
    last_updated_at,
from final
