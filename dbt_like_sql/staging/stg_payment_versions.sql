-- materialized: incremental
-- incremental_key: realm_id, payment_id, content_hash
-- Customer payments, typed (unapplied_amount is not yet applied to invoices).
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Payment', ...) for the records of one snapshot.
-- The header fields it shares with other transactions are typed once, by transaction_headers.
-- #UNIQUE_BY(realm_id, payment_id, content_hash)
with

source as (
    select * from transaction_headers('Payment')
)

select
    realm_id,  -- #NO_NULLS
    record_id as payment_id,  -- #NO_NULLS
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
    (payload->>'$.UnappliedAmt')::decimal(18,2) as unapplied_amount,
    deposit_to_account_id,
    ar_account_id,
    payment_method_id,
    payload->>'$.PaymentRefNum' as payment_reference,
    created_at,
    last_updated_at,
from source
