-- materialized: incremental
-- incremental_key: realm_id, inventory_adjustment_id, content_hash
-- Inventory quantity adjustments, typed: the offsetting account (AdjustAccountRef) of each.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('InventoryAdjustment', ...) for the records of one snapshot.
-- The header fields it shares with other transactions are typed once, by transaction_headers.
-- #UNIQUE_BY(realm_id, inventory_adjustment_id, content_hash)
with

source as (
    select * from transaction_headers('InventoryAdjustment')
)

select
    realm_id,  -- #NO_NULLS
    record_id as inventory_adjustment_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    doc_number,
    txn_date,
    payload->>'$.AdjustAccountRef.value' as adjust_account_id,
    private_note,
    class_id,
    department_id,
    created_at,
    last_updated_at,
from source
