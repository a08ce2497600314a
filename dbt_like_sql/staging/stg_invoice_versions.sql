-- materialized: incremental
-- incremental_key: realm_id, invoice_id, content_hash
-- Invoices, typed (total_amount includes tax; balance is what is still open).
-- One row per record version (a record changed twice has three rows); join
-- marts.record_history on (realm_id, entity, record_id, content_hash) for when each was live, or
-- call as_of('Invoice', ...) for the records of one snapshot.
-- The header fields it shares with other transactions are typed once, by transaction_headers.
-- #UNIQUE_BY(realm_id, invoice_id, content_hash)
with

source as (
    select * from transaction_headers('Invoice')
)

select
    realm_id,  -- #NO_NULLS
    record_id as invoice_id,  -- #NO_NULLS
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
    due_date,
    balance,
    sales_term_id,
    ar_account_id,
    deposit_to_account_id,
    payload->>'$.EmailStatus' as email_status,
    created_at,
    last_updated_at,
from source
