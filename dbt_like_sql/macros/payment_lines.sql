-- payment_lines(entity_name): what a payment (Payment, BillPayment) was applied to, one row per
-- transaction each line links (LinkedTxn): linked_index is the link's position in the line's
-- LinkedTxn array (0-based), line_index the line's (see record_lines). A line that links
-- nothing has no row. The stg_payment_line_versions and stg_bill_payment_line_versions models
-- call it.
--   select * from payment_lines('Payment')
create or replace macro payment_lines(entity_name) as table
select
    lines.realm_id,
    lines.record_id,
    lines.content_hash,
    lines.line_index,
    l.linked_index - 1 as linked_index,
    lines.amount,
    l.linked->>'$.TxnId' as linked_txn_id,
    l.linked->>'$.TxnType' as linked_txn_type,
from record_lines(entity_name) as lines,
    unnest(coalesce(try_cast(lines.line->'LinkedTxn' as json[]), [])) with ordinality
        as l(linked, linked_index)
