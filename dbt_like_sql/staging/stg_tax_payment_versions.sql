-- materialized: incremental
-- incremental_key: realm_id, tax_payment_id, content_hash
-- Sales tax payments (and refunds) to tax agencies, typed; read-only in the API.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('TaxPayment', ...) for the records of one snapshot.
-- The header fields it shares with other transactions are typed once, by transaction_headers.
-- #UNIQUE_BY(realm_id, tax_payment_id, content_hash)
with

source as (
    select * from transaction_headers('TaxPayment')
)

select
    realm_id,  -- #NO_NULLS
    record_id as tax_payment_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    coalesce(txn_date, (payload->>'$.PaymentDate')::date) as payment_date,
    payload->>'$.PaymentAccountRef.value' as payment_account_id,
    (payload->>'$.PaymentAmount')::decimal(18,2) as payment_amount,
    coalesce((payload->>'$.Refund')::boolean, false) as is_refund,
    payload->>'$.Description' as description,
    created_at,
    last_updated_at,
from source
