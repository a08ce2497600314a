-- Vendor credit lines: expenses by account (AccountBasedExpenseLineDetail) or by item (ItemBasedExpenseLineDetail).
-- One row per line of each record version: line_index is the line's position in the payload's
-- Line array (0-based, as in field_changes paths such as Line[0].Amount).
-- #UNIQUE_BY(realm_id, vendor_credit_id, content_hash, line_index)
with

source as (
    select
        realm_id,
        record_id as vendor_credit_id,
        content_hash,
        payload,
    from staging.stg_record_versions
    where entity = 'VendorCredit'
),

lines as (
    select
        source.realm_id,
        source.vendor_credit_id,
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
        vendor_credit_id,
        content_hash,
        line_index,
        line->>'$.Id' as line_id,
        (line->>'$.LineNum')::integer as line_number,
        line->>'$.DetailType' as detail_type,
        line->>'$.Description' as description,
        (line->>'$.Amount')::decimal(18,2) as amount,
        line->>'$.AccountBasedExpenseLineDetail.AccountRef.value' as account_id,
        line->>'$.ItemBasedExpenseLineDetail.ItemRef.value' as item_id,
        (line->>'$.ItemBasedExpenseLineDetail.Qty')::decimal(18,4) as quantity,
        (line->>'$.ItemBasedExpenseLineDetail.UnitPrice')::decimal(18,6) as unit_price,
        coalesce(line->>'$.AccountBasedExpenseLineDetail.CustomerRef.value', line->>'$.ItemBasedExpenseLineDetail.CustomerRef.value') as customer_id,
        coalesce(line->>'$.AccountBasedExpenseLineDetail.ClassRef.value', line->>'$.ItemBasedExpenseLineDetail.ClassRef.value') as class_id,
        coalesce(line->>'$.AccountBasedExpenseLineDetail.BillableStatus', line->>'$.ItemBasedExpenseLineDetail.BillableStatus') as billable_status,
        coalesce(line->>'$.AccountBasedExpenseLineDetail.TaxCodeRef.value', line->>'$.ItemBasedExpenseLineDetail.TaxCodeRef.value') as tax_code,
    from lines
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    vendor_credit_id,  -- #NO_NULLS
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
from final
