-- Sales tax payments (and refunds) to tax agencies, typed; read-only in the API.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('TaxPayment', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, tax_payment_id, content_hash)
with

source as (
    select * from staging.stg_record_versions
    where entity = 'TaxPayment'
),

renamed as (
    select
        realm_id,
        record_id as tax_payment_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        coalesce(txn_date, (payload->>'$.PaymentDate')::date) as payment_date,
        payload->>'$.PaymentAccountRef.value' as payment_account_id,
        (payload->>'$.PaymentAmount')::decimal(18,2) as payment_amount,
        coalesce((payload->>'$.Refund')::boolean, false) as is_refund,
        payload->>'$.Description' as description,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    tax_payment_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    payment_date,
    payment_account_id,
    payment_amount,
    is_refund,
    description,
    created_at,
    last_updated_at,
from final
