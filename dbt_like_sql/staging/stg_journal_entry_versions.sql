-- materialized: incremental
-- incremental_key: realm_id, journal_entry_id, content_hash
-- Journal entries, typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('JournalEntry', ...) for the records of one snapshot.
-- The header fields it shares with other transactions are typed once, by transaction_headers.
-- #UNIQUE_BY(realm_id, journal_entry_id, content_hash)
with

source as (
    select * from transaction_headers('JournalEntry')
)

select
    realm_id,  -- #NO_NULLS
    record_id as journal_entry_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    doc_number,
    txn_date,
    currency_code,
    exchange_rate,
    private_note,
    total_amount,
    (payload->>'$.Adjustment')::boolean as is_adjustment,
    created_at,
    last_updated_at,
from source
