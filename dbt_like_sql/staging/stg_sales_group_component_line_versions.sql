-- materialized: incremental
-- incremental_key: realm_id, entity, record_id, content_hash
-- The member lines of group-item lines (GroupLineDetail.Line) on sales documents: a group line
-- carries the group's total, its members carry the items, quantities and amounts that QBO posts.
-- record_id is the transaction's id; line_index is the group line's position in Line and
-- component_index the member's position in its GroupLineDetail.Line (both 0-based).
-- #UNIQUE_BY(realm_id, entity, record_id, content_hash, line_index, component_index)
with

source as (
    select
        realm_id,
        entity,
        record_id,
        content_hash,
        payload,
    from delta.stg_record_versions
    where entity in ('Invoice', 'SalesReceipt', 'CreditMemo', 'RefundReceipt', 'Estimate')
        and contains(payload::varchar, '"GroupLineDetail"')
),

group_lines as (
    select
        source.realm_id,
        source.entity,
        source.record_id,
        source.content_hash,
        l.line,
        l.line_index - 1 as line_index,
    from source,
        unnest(coalesce(try_cast(source.payload->'Line' as json[]), [])) with ordinality
            as l(line, line_index)
    where (l.line->>'$.DetailType') = 'GroupLineDetail'
),

components as (
    select
        g.realm_id,
        g.entity,
        g.record_id,
        g.content_hash,
        g.line_index,
        g.line->>'$.GroupLineDetail.GroupItemRef.value' as group_item_id,
        c.component,
        c.component_index - 1 as component_index,
    from group_lines as g,
        unnest(
            coalesce(try_cast(g.line->'$.GroupLineDetail.Line' as json[]), [])
        ) with ordinality as c(component, component_index)
),

renamed as (
    select
        realm_id,
        entity,
        record_id,
        content_hash,
        line_index,
        component_index,
        group_item_id,
        component->>'$.Id' as line_id,
        component->>'$.DetailType' as detail_type,
        component->>'$.Description' as description,
        (component->>'$.Amount')::decimal(18,2) as amount,
        component->>'$.SalesItemLineDetail.ItemRef.value' as item_id,
        component->>'$.SalesItemLineDetail.ItemRef.name' as item_name,
        (component->>'$.SalesItemLineDetail.Qty')::decimal(18,4) as quantity,
        (component->>'$.SalesItemLineDetail.UnitPrice')::decimal(18,6) as unit_price,
        component->>'$.SalesItemLineDetail.ItemAccountRef.value' as income_account_id,
        component->>'$.SalesItemLineDetail.ClassRef.value' as class_id,
        component->>'$.SalesItemLineDetail.TaxCodeRef.value' as tax_code,
    from components
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    entity,  -- #NO_NULLS
    record_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    line_index,  -- #NO_NULLS
    component_index,  -- #NO_NULLS
    group_item_id,
    line_id,
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
from final
