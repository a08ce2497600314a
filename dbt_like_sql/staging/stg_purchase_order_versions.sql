-- materialized: incremental
-- incremental_key: realm_id, purchase_order_id, content_hash
-- Purchase orders (they post nothing), typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('PurchaseOrder', ...) for the records of one snapshot.
-- The header fields it shares with other transactions are typed once, by transaction_headers.
-- #UNIQUE_BY(realm_id, purchase_order_id, content_hash)
with

source as (
    select * from transaction_headers('PurchaseOrder')
)

select
    realm_id,  -- #NO_NULLS
    record_id as purchase_order_id,  -- #NO_NULLS
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
    payload->>'$.POStatus' as po_status,
    due_date,
    created_at,
    last_updated_at,
from source
