-- Customer payments, typed (unapplied_amount is not yet applied to invoices).
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Payment', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, payment_id, content_hash)
with

source as (
    select * from staging.stg_record_versions
    where entity = 'Payment'
),

renamed as (
    select
        realm_id,
        record_id as payment_id,
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
        (payload->>'$.UnappliedAmt')::decimal(18,2) as unapplied_amount,
        payload->>'$.DepositToAccountRef.value' as deposit_to_account_id,
        payload->>'$.ARAccountRef.value' as ar_account_id,
        payload->>'$.PaymentMethodRef.value' as payment_method_id,
        payload->>'$.PaymentRefNum' as payment_reference,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    payment_id,  -- #NO_NULLS
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
    unapplied_amount,
    deposit_to_account_id,
    ar_account_id,
    payment_method_id,
    payment_reference,
    created_at,
    last_updated_at,
from final
