-- materialized: incremental
-- incremental_key: realm_id, bill_payment_id, content_hash
-- Bill payments (by check or credit card), typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('BillPayment', ...) for the records of one snapshot.
-- The header fields it shares with other transactions are typed once, by transaction_headers.
-- #UNIQUE_BY(realm_id, bill_payment_id, content_hash)
with

source as (
    select * from transaction_headers('BillPayment')
)

select
    realm_id,  -- #NO_NULLS
    record_id as bill_payment_id,  -- #NO_NULLS
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
    payload->>'$.PayType' as pay_type,
    total_amount,
    ap_account_id,
    payload->>'$.CheckPayment.BankAccountRef.value' as bank_account_id,
    payload->>'$.CreditCardPayment.CCAccountRef.value' as credit_card_account_id,
    payload->>'$.CheckPayment.PrintStatus' as print_status,
    created_at,
    last_updated_at,
from source
