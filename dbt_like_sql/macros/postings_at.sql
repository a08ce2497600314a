-- postings_at(snapshot_ref): the general-ledger postings of the transactions live in the snapshot
-- snapshot_ref names (see snapshot_at), for every company, with their account's name, type and
-- classification: one row per posting of intermediate.int_ledger_postings (amount > 0 a debit,
-- < 0 a credit; posting_role and the rules are documented there). snapshot_at is the snapshot's
-- server time. The analysts' monthly models (revenue_by_month, ar_by_month, ap_by_month) read it.
--   select account_type, sum(amount) from postings_at('latest') group by all
create or replace macro postings_at(snapshot_ref) as table
with

snapshot as (
    select * from snapshot_at(snapshot_ref)
)

select
    s.realm_id,
    s.snapshot_id,
    s.server_at as snapshot_at,
    p.entity,
    p.record_id,
    p.content_hash,
    p.txn_date,
    p.account_id,
    a.account_name,
    a.account_type,
    a.classification,
    p.posting_role,
    p.amount,
from snapshot as s
inner join intermediate.int_record_intervals as i
    on i.realm_id = s.realm_id
    and i.valid_from_seq <= s.snapshot_seq
    and (i.valid_to_seq is null or i.valid_to_seq > s.snapshot_seq)
inner join intermediate.int_ledger_postings as p
    on p.realm_id = i.realm_id
    and p.entity = i.entity
    and p.record_id = i.record_id
    and p.content_hash = i.content_hash
left join intermediate.int_accounts_latest as a
    on a.realm_id = p.realm_id and a.account_id = p.account_id
