-- materialized: incremental
-- incremental_key: realm_id, transfer_id, content_hash
-- Transfers between accounts, typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Transfer', ...) for the records of one snapshot.
-- The header fields it shares with other transactions are typed once, by transaction_headers.
-- #UNIQUE_BY(realm_id, transfer_id, content_hash)
with

source as (
    select * from transaction_headers('Transfer')
)

select
    realm_id,  -- #NO_NULLS
    record_id as transfer_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    txn_date,
    payload->>'$.FromAccountRef.value' as from_account_id,
    payload->>'$.ToAccountRef.value' as to_account_id,
    total_amount as amount,
    private_note,
    currency_code,
    created_at,
    last_updated_at,
from source
