-- Inventory adjustment lines: the item and its quantity difference (ItemAdjustmentLineDetail).
-- One row per line of each record version: line_index is the line's position in the payload's
-- Line array (0-based, as in field_changes paths such as Line[0].Amount).
-- #UNIQUE_BY(realm_id, inventory_adjustment_id, content_hash, line_index)
with

source as (
    select
        realm_id,
        record_id as inventory_adjustment_id,
        content_hash,
        payload,
    from staging.stg_record_versions
    where entity = 'InventoryAdjustment'
),

lines as (
    select
        source.realm_id,
        source.inventory_adjustment_id,
        source.content_hash,
        l.line,
        l.line_index - 1 as line_index,
    from source,
        unnest(coalesce(try_cast(source.payload->'Line' as json[]), [])) with ordinality
            as l(line, line_index)
),

renamed as (
    select
        realm_id,
        inventory_adjustment_id,
        content_hash,
        line_index,
        line->>'$.Id' as line_id,
        (line->>'$.LineNum')::integer as line_number,
        line->>'$.DetailType' as detail_type,
        line->>'$.Description' as description,
        line->>'$.ItemAdjustmentLineDetail.ItemRef.value' as item_id,
        line->>'$.ItemAdjustmentLineDetail.ItemRef.name' as item_name,
        (line->>'$.ItemAdjustmentLineDetail.QtyDiff')::decimal(18,4) as quantity_difference,
    from lines
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    inventory_adjustment_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    line_index,  -- #NO_NULLS
    line_id,
    line_number,
    detail_type,
    description,
    item_id,
    item_name,
    quantity_difference,
from final
