-- materialized: incremental
-- incremental_key: realm_id, deposit_id, content_hash
-- Bank deposits, typed (cash_back is taken out of the deposit).
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Deposit', ...) for the records of one snapshot.
-- The header fields it shares with other transactions are typed once, by transaction_headers.
-- #UNIQUE_BY(realm_id, deposit_id, content_hash)
with

source as (
    select * from transaction_headers('Deposit')
)

select
    realm_id,  -- #NO_NULLS
    record_id as deposit_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    doc_number,
    txn_date,
    currency_code,
    exchange_rate,
    private_note,
    deposit_to_account_id,
    total_amount,
    payload->>'$.CashBack.AccountRef.value' as cash_back_account_id,
    (payload->>'$.CashBack.Amount')::decimal(18,2) as cash_back_amount,
    department_id,
    created_at,
    last_updated_at,
from source
