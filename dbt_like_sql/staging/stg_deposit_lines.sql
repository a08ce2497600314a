-- Deposit lines: money deposited from an account (DepositLineDetail.AccountRef) or from earlier payments (LinkedTxn, held in Undeposited Funds).
-- One row per line of each record version: line_index is the line's position in the payload's
-- Line array (0-based, as in field_changes paths such as Line[0].Amount).
-- #UNIQUE_BY(realm_id, deposit_id, content_hash, line_index)
with

source as (
    select
        realm_id,
        record_id as deposit_id,
        content_hash,
        payload,
    from staging.stg_record_versions
    where entity = 'Deposit'
),

lines as (
    select
        source.realm_id,
        source.deposit_id,
        source.content_hash,
        l.line,
        l.line_index - 1 as line_index,
    from source,
        unnest(coalesce(try_cast(source.payload->'Line' as json[]), [])) with ordinality
            as l(line, line_index)
),

renamed as (
    select
        realm_id,
        deposit_id,
        content_hash,
        line_index,
        line->>'$.Id' as line_id,
        (line->>'$.LineNum')::integer as line_number,
        line->>'$.DetailType' as detail_type,
        line->>'$.Description' as description,
        (line->>'$.Amount')::decimal(18,2) as amount,
        line->>'$.DepositLineDetail.AccountRef.value' as account_id,
        line->>'$.DepositLineDetail.Entity.type' as party_type,
        line->>'$.DepositLineDetail.Entity.value' as party_id,
        line->>'$.DepositLineDetail.PaymentMethodRef.value' as payment_method_id,
        line->>'$.DepositLineDetail.ClassRef.value' as class_id,
        line->>'$.LinkedTxn[0].TxnId' as linked_txn_id,
        line->>'$.LinkedTxn[0].TxnType' as linked_txn_type,
    from lines
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    deposit_id,  -- #NO_NULLS
    content_hash,
    line_index,  -- #NO_NULLS
    line_id,
    line_number,
    detail_type,
    description,
    amount,
    account_id,
    party_type,
    party_id,
    payment_method_id,
    class_id,
    linked_txn_id,
    linked_txn_type,
from final
