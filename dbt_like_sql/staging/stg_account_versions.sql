-- materialized: incremental
-- incremental_key: realm_id, account_id, content_hash
-- The chart of accounts, typed (classification Asset, Liability, Equity, Revenue, Expense).
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Account', ...) for the records of one snapshot.
-- #UNIQUE_BY(realm_id, account_id, content_hash)
with

source as (
    select * from delta.stg_record_versions
    where entity = 'Account'
),

renamed as (
    select
        realm_id,
        record_id as account_id,
        content_hash,
        first_snapshot_id,
        sync_token,
        payload->>'$.Name' as account_name,
        payload->>'$.FullyQualifiedName' as fully_qualified_name,
        payload->>'$.AcctNum' as account_number,
        payload->>'$.AccountType' as account_type,
        payload->>'$.AccountSubType' as account_sub_type,
        payload->>'$.Classification' as classification,
        is_active,
        (payload->>'$.SubAccount')::boolean as is_sub_account,
        payload->>'$.ParentRef.value' as parent_account_id,
        (payload->>'$.CurrentBalance')::decimal(18,2) as current_balance,
        (payload->>'$.CurrentBalanceWithSubAccounts')::decimal(18,2) as current_balance_with_sub_accounts,
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
    account_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    account_name,
    fully_qualified_name,
    account_number,
    account_type,
    account_sub_type,
    classification,
    is_active,
    is_sub_account,
    parent_account_id,
    current_balance,
    current_balance_with_sub_accounts,
    currency_code,
    created_at,
    last_updated_at,
from final
