-- Transfers between accounts, typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Transfer', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, transfer_id, content_hash)
with

source as (
    select * from staging.stg_record_versions
    where entity = 'Transfer'
),

renamed as (
    select
        realm_id,
        record_id as transfer_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        txn_date,
        payload->>'$.FromAccountRef.value' as from_account_id,
        payload->>'$.ToAccountRef.value' as to_account_id,
        total_amount as amount,
        payload->>'$.PrivateNote' as private_note,
        payload->>'$.CurrencyRef.value' as currency_code,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    transfer_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    txn_date,
    from_account_id,
    to_account_id,
    amount,
    private_note,
    currency_code,
    created_at,
    last_updated_at,
from final
