-- Bill payments (by check or credit card), typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('BillPayment', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, bill_payment_id, content_hash)
with

source as (
    select * from staging.stg_record_versions
    where entity = 'BillPayment'
),

renamed as (
    select
        realm_id,
        record_id as bill_payment_id,
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
        payload->>'$.PayType' as pay_type,
        total_amount,
        payload->>'$.APAccountRef.value' as ap_account_id,
        payload->>'$.CheckPayment.BankAccountRef.value' as bank_account_id,
        payload->>'$.CreditCardPayment.CCAccountRef.value' as credit_card_account_id,
        payload->>'$.CheckPayment.PrintStatus' as print_status,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    bill_payment_id,  -- #NO_NULLS
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
    pay_type,
    total_amount,
    ap_account_id,
    bank_account_id,
    credit_card_account_id,
    print_status,
    created_at,
    last_updated_at,
from final
