-- materialized: incremental
-- incremental_key: realm_id, refund_receipt_id, content_hash
-- Refund receipt lines: items sold (SalesItemLineDetail), discounts, groups and the subtotal line (detail_type SubTotalLineDetail).
-- One row per line of each record version: line_index is the line's position in the payload's
-- Line array (0-based, as in field_changes paths such as Line[0].Amount). The shape is the
-- sales_document_lines macro (dbt_like_sql/macros); this file names the columns.
-- #UNIQUE_BY(realm_id, refund_receipt_id, content_hash, line_index)
with

source as (
    select * from sales_document_lines('RefundReceipt')
)

select
    realm_id,  -- #NO_NULLS
    record_id as refund_receipt_id,  -- #NO_NULLS
    content_hash,
    line_index,  -- #NO_NULLS
    line_id,
    line_number,
    detail_type,
    description,
    amount,
    item_id,
    item_name,
    quantity,
    unit_price,
    income_account_id,
    class_id,
    tax_code,
    service_date,
    discount_account_id,
    is_percent_discount,
    discount_percent,
    group_item_id,
from source
