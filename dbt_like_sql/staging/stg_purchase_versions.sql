-- materialized: incremental
-- incremental_key: realm_id, purchase_id, content_hash
-- Purchases (expenses, checks and credit card charges or credits), typed. is_credit marks a refund (Credit=true).
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Purchase', ...) for the records of one snapshot.
-- The header fields it shares with other transactions are typed once, by transaction_headers.
-- #UNIQUE_BY(realm_id, purchase_id, content_hash)
with

source as (
    select * from transaction_headers('Purchase')
)

select
    realm_id,  -- #NO_NULLS
    record_id as purchase_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    doc_number,
    txn_date,
    currency_code,
    exchange_rate,
    private_note,
    payload->>'$.PaymentType' as payment_type,
    payload->>'$.AccountRef.value' as payment_account_id,
    payload->>'$.EntityRef.type' as payee_type,
    payload->>'$.EntityRef.value' as payee_id,
    payload->>'$.EntityRef.name' as payee_name,
    total_amount,
    (payload->>'$.Credit')::boolean as is_credit,
    payment_method_id,
    department_id,
    created_at,
    last_updated_at,
from source
