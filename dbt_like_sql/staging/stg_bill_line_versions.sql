-- materialized: incremental
-- incremental_key: realm_id, bill_id, content_hash
-- Bill lines: expenses by account (AccountBasedExpenseLineDetail) or by item (ItemBasedExpenseLineDetail).
-- One row per line of each record version: line_index is the line's position in the payload's
-- Line array (0-based, as in field_changes paths such as Line[0].Amount). The shape is the
-- purchase_document_lines macro (dbt_like_sql/macros); this file names the columns.
-- #UNIQUE_BY(realm_id, bill_id, content_hash, line_index)
with

source as (
    select * from purchase_document_lines('Bill')
)

select
    realm_id,  -- #NO_NULLS
    record_id as bill_id,  -- #NO_NULLS
    content_hash,
    line_index,  -- #NO_NULLS
    line_id,
    line_number,
    detail_type,
    description,
    amount,
    account_id,
    item_id,
    quantity,
    unit_price,
    customer_id,
    class_id,
    billable_status,
    tax_code,
from source
