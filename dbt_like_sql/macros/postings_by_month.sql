-- postings_by_month(snapshot_ref): the ledger's postings of every month, by account type, as the
-- books stood in the snapshot snapshot_ref names (see snapshot_at), for every company. Every
-- month from the first transaction's to the later of the last transaction's and the snapshot's
-- has rows: one per account type posted to in the month, or one with account_type null when
-- nothing was. debits is the month's positive amounts, credits its negative ones (so
-- debits + credits is the net). The month calendar of revenue_by_month and account_type_by_month.
--   select month, account_type, debits + credits as net from postings_by_month('latest')
create or replace macro postings_by_month(snapshot_ref) as table
with

postings as (
    select * from postings_at(snapshot_ref)
    where txn_date is not null
),

months as (
    select
        realm_id,
        snapshot_id,
        unnest(generate_series(
            date_trunc('month', min(txn_date)),
            greatest(
                date_trunc('month', max(txn_date)),
                date_trunc('month', timezone('UTC', any_value(snapshot_at)))
            ),
            interval 1 month
        ))::date as month,
    from postings
    group by realm_id, snapshot_id
),

sums as (
    select
        realm_id,
        date_trunc('month', txn_date)::date as month,
        account_type,
        coalesce(sum(amount) filter (where amount > 0), 0) as debits,
        coalesce(sum(amount) filter (where amount < 0), 0) as credits,
    from postings
    group by all
)

select
    m.realm_id,
    m.snapshot_id,
    m.month,
    s.account_type,
    coalesce(s.debits, 0) as debits,
    coalesce(s.credits, 0) as credits,
from months as m
left join sums as s on m.realm_id = s.realm_id and m.month = s.month
