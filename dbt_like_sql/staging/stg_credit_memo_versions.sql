-- materialized: incremental
-- incremental_key: realm_id, credit_memo_id, content_hash
-- Credit memos, typed (remaining_credit is what is still unapplied).
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('CreditMemo', ...) for the records of one snapshot.
-- The header fields it shares with other transactions are typed once, by transaction_headers.
-- #UNIQUE_BY(realm_id, credit_memo_id, content_hash)
with

source as (
    select * from transaction_headers('CreditMemo')
)

select
    realm_id,  -- #NO_NULLS
    record_id as credit_memo_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    doc_number,
    txn_date,
    currency_code,
    exchange_rate,
    private_note,
    customer_id,
    customer_name,
    total_amount,
    total_tax,
    class_id,
    department_id,
    customer_memo,
    bill_email,
    (payload->>'$.RemainingCredit')::decimal(18,2) as remaining_credit,
    balance,
    ar_account_id,
    created_at,
    last_updated_at,
from source
