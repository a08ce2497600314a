-- materialized: incremental
-- incremental_key: realm_id, bill_id, content_hash
-- Bills (vendor invoices), typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Bill', ...) for the records of one snapshot.
-- The header fields it shares with other transactions are typed once, by transaction_headers.
-- #UNIQUE_BY(realm_id, bill_id, content_hash)
with

source as (
    select * from transaction_headers('Bill')
)

select
    realm_id,  -- #NO_NULLS
    record_id as bill_id,  -- #NO_NULLS
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
    total_amount,
    ap_account_id,
    department_id,
    due_date,
    balance,
    sales_term_id,
    created_at,
    last_updated_at,
from source
