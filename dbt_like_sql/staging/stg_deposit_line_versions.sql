-- materialized: incremental
-- incremental_key: realm_id, deposit_id, content_hash
-- Deposit lines: money deposited from an account (DepositLineDetail.AccountRef) or from earlier payments (LinkedTxn, held in Undeposited Funds).
-- One row per line of each record version: line_index is the line's position in the payload's
-- Line array (0-based, as in field_changes paths such as Line[0].Amount). The shape is the
-- record_lines macro (dbt_like_sql/macros); this file names the columns.
-- #UNIQUE_BY(realm_id, deposit_id, content_hash, line_index)
with

source as (
    select * from record_lines('Deposit')
)

select
    realm_id,  -- #NO_NULLS
    record_id as deposit_id,  -- #NO_NULLS
    content_hash,
    line_index,  -- #NO_NULLS
    line_id,
    line_number,
    detail_type,
    description,
    amount,
    line->>'$.DepositLineDetail.AccountRef.value' as account_id,
    line->>'$.DepositLineDetail.Entity.type' as party_type,
    line->>'$.DepositLineDetail.Entity.value' as party_id,
    line->>'$.DepositLineDetail.PaymentMethodRef.value' as payment_method_id,
    line->>'$.DepositLineDetail.ClassRef.value' as class_id,
    line->>'$.LinkedTxn[0].TxnId' as linked_txn_id,
    line->>'$.LinkedTxn[0].TxnType' as linked_txn_type,
from source
