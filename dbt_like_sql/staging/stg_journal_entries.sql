-- Journal entries, typed.
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('JournalEntry', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, journal_entry_id, content_hash)
with

source as (
    select * from staging.stg_record_versions
    where entity = 'JournalEntry'
),

renamed as (
    select
        realm_id,
        record_id as journal_entry_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        payload->>'$.DocNumber' as doc_number,
        txn_date,
        payload->>'$.CurrencyRef.value' as currency_code,
        (payload->>'$.ExchangeRate')::decimal(18,6) as exchange_rate,
        payload->>'$.PrivateNote' as private_note,
        total_amount,
        (payload->>'$.Adjustment')::boolean as is_adjustment,
        (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
        last_updated_at,
    from source
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    journal_entry_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    doc_number,
    txn_date,
    currency_code,
    exchange_rate,
    private_note,
    total_amount,
    is_adjustment,
    created_at,
    last_updated_at,
from final
