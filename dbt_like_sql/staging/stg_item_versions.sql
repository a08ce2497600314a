-- materialized: incremental
-- incremental_key: realm_id, item_id, content_hash
-- Items (products and services, inventory, groups, categories), typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Item', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, item_id, content_hash)
with

source as (
    select * from delta.stg_record_versions
    where entity = 'Item'
),

renamed as (
    select
        realm_id,
        record_id as item_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        payload->>'$.Name' as item_name,
        payload->>'$.FullyQualifiedName' as fully_qualified_name,
        payload->>'$.Sku' as sku,
        payload->>'$.Type' as item_type,
        is_active,
        payload->>'$.Description' as description,
        (payload->>'$.UnitPrice')::decimal(18,4) as unit_price,
        (payload->>'$.PurchaseCost')::decimal(18,4) as purchase_cost,
        (payload->>'$.TrackQtyOnHand')::boolean as is_tracking_quantity,
        (payload->>'$.QtyOnHand')::decimal(18,4) as quantity_on_hand,
        (payload->>'$.Taxable')::boolean as is_taxable,
        payload->>'$.ParentRef.value' as parent_item_id,
        payload->>'$.IncomeAccountRef.value' as income_account_id,
        payload->>'$.ExpenseAccountRef.value' as expense_account_id,
        payload->>'$.AssetAccountRef.value' as asset_account_id,
        payload->>'$.PrefVendorRef.value' as preferred_vendor_id,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    item_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    item_name,
    fully_qualified_name,
    sku,
    item_type,
    is_active,
    description,
    unit_price,
    purchase_cost,
    is_tracking_quantity,
    quantity_on_hand,
    is_taxable,
    parent_item_id,
    income_account_id,
    expense_account_id,
    asset_account_id,
    preferred_vendor_id,
    created_at,
    last_updated_at,
from final
