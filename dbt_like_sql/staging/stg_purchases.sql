-- Purchases (expenses, checks and credit card charges or credits), typed. is_credit marks a refund (Credit=true).
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Purchase', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, purchase_id, content_hash)
with

source as (
    select * from staging.stg_record_versions
    where entity = 'Purchase'
),

renamed as (
    select
        realm_id,
        record_id as purchase_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        payload->>'$.DocNumber' as doc_number,
        txn_date,
        payload->>'$.CurrencyRef.value' as currency_code,
        (payload->>'$.ExchangeRate')::decimal(18,6) as exchange_rate,
        payload->>'$.PrivateNote' as private_note,
        payload->>'$.PaymentType' as payment_type,
        payload->>'$.AccountRef.value' as payment_account_id,
        payload->>'$.EntityRef.type' as payee_type,
        payload->>'$.EntityRef.value' as payee_id,
        payload->>'$.EntityRef.name' as payee_name,
        total_amount,
        (payload->>'$.Credit')::boolean as is_credit,
        payload->>'$.PaymentMethodRef.value' as payment_method_id,
        payload->>'$.DepartmentRef.value' as department_id,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    purchase_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    doc_number,
    txn_date,
    currency_code,
    exchange_rate,
    private_note,
    payment_type,
    payment_account_id,
    payee_type,
    payee_id,
    payee_name,
    total_amount,
    is_credit,
    payment_method_id,
    department_id,
    created_at,
    last_updated_at,
from final
