-- materialized: incremental
-- incremental_key: realm_id, inventory_adjustment_id, content_hash
-- Inventory adjustment lines: the item and its quantity difference (ItemAdjustmentLineDetail).
-- One row per line of each record version: line_index is the line's position in the payload's
-- Line array (0-based, as in field_changes paths such as Line[0].Amount). The shape is the
-- record_lines macro (dbt_like_sql/macros); this file names the columns.
-- #UNIQUE_BY(realm_id, inventory_adjustment_id, content_hash, line_index)
with

source as (
    select * from record_lines('InventoryAdjustment')
)

select
    realm_id,  -- #NO_NULLS
    record_id as inventory_adjustment_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    line_index,  -- #NO_NULLS
    line_id,
    line_number,
    detail_type,
    description,
    line->>'$.ItemAdjustmentLineDetail.ItemRef.value' as item_id,
    line->>'$.ItemAdjustmentLineDetail.ItemRef.name' as item_name,
    (line->>'$.ItemAdjustmentLineDetail.QtyDiff')::decimal(18,4) as quantity_difference,
from source
