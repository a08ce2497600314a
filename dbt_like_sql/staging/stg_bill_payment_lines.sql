-- Bill payment lines: what each bill payment paid (one row per linked bill, vendor credit or journal entry).
-- One row per line of each record version: line_index is the line's position in the payload's
-- Line array (0-based, as in field_changes paths such as Line[0].Amount).
-- #UNIQUE_BY(realm_id, bill_payment_id, content_hash, line_index, linked_index)
with

source as (
    select
        realm_id,
        record_id as bill_payment_id,
        content_hash,
        payload,
    from staging.stg_record_versions
    where entity = 'BillPayment'
),

lines as (
    select
        source.realm_id,
        source.bill_payment_id,
        source.content_hash,
        l.line,
        l.line_index - 1 as line_index,
    from source,
        unnest(coalesce(try_cast(source.payload->'Line' as json[]), [])) with ordinality
            as l(line, line_index)
),

linked as (
    select
        lines.*,
        l.linked,
        l.linked_index - 1 as linked_index,
    from lines,
        unnest(coalesce(try_cast(lines.line->'LinkedTxn' as json[]), [])) with ordinality
            as l(linked, linked_index)
),

renamed as (
    select
        realm_id,
        bill_payment_id,
        content_hash,
        line_index,
        linked_index,
        (line->>'$.Amount')::decimal(18,2) as amount,
        linked->>'$.TxnId' as linked_txn_id,
        linked->>'$.TxnType' as linked_txn_type,
    from linked
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    bill_payment_id,  -- #NO_NULLS
    content_hash,
    line_index,  -- #NO_NULLS
    linked_index,
    amount,
    linked_txn_id,
    linked_txn_type,
from final
