-- Credit memos, typed (remaining_credit is what is still unapplied).
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('CreditMemo', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, credit_memo_id, content_hash)
with

source as (
    select * from staging.stg_record_versions
    where entity = 'CreditMemo'
),

renamed as (
    select
        realm_id,
        record_id as credit_memo_id,
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
        (payload->>'$.RemainingCredit')::decimal(18,2) as remaining_credit,
        (payload->>'$.Balance')::decimal(18,2) as balance,
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
    credit_memo_id,  -- #NO_NULLS
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
    remaining_credit,
    balance,
    ar_account_id,
    created_at,
    last_updated_at,
from final
