-- Refund receipt lines: items sold (SalesItemLineDetail), discounts, groups and the subtotal line (detail_type SubTotalLineDetail).
-- One row per line of each record version: line_index is the line's position in the payload's
-- Line array (0-based, as in field_changes paths such as Line[0].Amount).
-- #UNIQUE_BY(realm_id, refund_receipt_id, content_hash, line_index)
with

source as (
    select
        realm_id,
        record_id as refund_receipt_id,
        content_hash,
        payload,
    from staging.stg_record_versions
    where entity = 'RefundReceipt'
),

lines as (
    select
        source.realm_id,
        source.refund_receipt_id,
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
        refund_receipt_id,
        content_hash,
        line_index,
        line->>'$.Id' as line_id,
        (line->>'$.LineNum')::integer as line_number,
        line->>'$.DetailType' as detail_type,
        line->>'$.Description' as description,
        (line->>'$.Amount')::decimal(18,2) as amount,
        line->>'$.SalesItemLineDetail.ItemRef.value' as item_id,
        line->>'$.SalesItemLineDetail.ItemRef.name' as item_name,
        (line->>'$.SalesItemLineDetail.Qty')::decimal(18,4) as quantity,
        (line->>'$.SalesItemLineDetail.UnitPrice')::decimal(18,6) as unit_price,
        line->>'$.SalesItemLineDetail.ItemAccountRef.value' as income_account_id,
        line->>'$.SalesItemLineDetail.ClassRef.value' as class_id,
        line->>'$.SalesItemLineDetail.TaxCodeRef.value' as tax_code,
        (line->>'$.SalesItemLineDetail.ServiceDate')::date as service_date,
        line->>'$.DiscountLineDetail.DiscountAccountRef.value' as discount_account_id,
        (line->>'$.DiscountLineDetail.PercentBased')::boolean as is_percent_discount,
        (line->>'$.DiscountLineDetail.DiscountPercent')::decimal(9,4) as discount_percent,
        line->>'$.GroupLineDetail.GroupItemRef.value' as group_item_id,
    from lines
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    refund_receipt_id,  -- #NO_NULLS
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
from final
