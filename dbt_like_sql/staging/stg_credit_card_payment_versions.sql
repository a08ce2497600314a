-- materialized: incremental
-- incremental_key: realm_id, credit_card_payment_id, content_hash
-- Credit card bill payments (bank -> card), typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('CreditCardPayment', ...) for the records of one snapshot.
-- The header fields it shares with other transactions are typed once, by transaction_headers.
-- #UNIQUE_BY(realm_id, credit_card_payment_id, content_hash)
with

source as (
    select * from transaction_headers('CreditCardPayment')
)

select
    realm_id,  -- #NO_NULLS
    record_id as credit_card_payment_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    txn_date,
    payload->>'$.CreditCardAccountRef.value' as credit_card_account_id,
    payload->>'$.BankAccountRef.value' as bank_account_id,
    vendor_id,
    total_amount as amount,
    private_note,
    created_at,
    last_updated_at,
from source
