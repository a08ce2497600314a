-- Credit card bill payments (bank -> card), typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('CreditCardPayment', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, credit_card_payment_id, content_hash)
with

source as (
    select * from staging.stg_record_versions
    where entity = 'CreditCardPayment'
),

renamed as (
    select
        realm_id,
        record_id as credit_card_payment_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        txn_date,
        payload->>'$.CreditCardAccountRef.value' as credit_card_account_id,
        payload->>'$.BankAccountRef.value' as bank_account_id,
        payload->>'$.VendorRef.value' as vendor_id,
        total_amount as amount,
        payload->>'$.PrivateNote' as private_note,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    credit_card_payment_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    txn_date,
    credit_card_account_id,
    bank_account_id,
    vendor_id,
    amount,
    private_note,
    created_at,
    last_updated_at,
from final
