-- materialized: incremental
-- incremental_key: realm_id, bill_payment_id, content_hash
-- Bill payment lines: what each bill payment paid (one row per linked bill, vendor credit or journal entry).
-- One row per line of each record version: line_index is the line's position in the payload's
-- Line array (0-based, as in field_changes paths such as Line[0].Amount). The shape is the
-- payment_lines macro (dbt_like_sql/macros); this file names the columns.
-- #UNIQUE_BY(realm_id, bill_payment_id, content_hash, line_index, linked_index)
with

source as (
    select * from payment_lines('BillPayment')
)

select
    realm_id,  -- #NO_NULLS
    record_id as bill_payment_id,  -- #NO_NULLS
    content_hash,
    line_index,  -- #NO_NULLS
    linked_index,
    amount,
    linked_txn_id,
    linked_txn_type,
from source
