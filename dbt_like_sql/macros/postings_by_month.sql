-- postings_by_month(snapshot_ref): the ledger's postings of every month, by account type, as the
-- books stood in the snapshot snapshot_ref names (see snapshot_at), for every company. Every
-- month from the first transaction's to the later of the last transaction's and the snapshot's
-- has rows: one per account type posted to in the month, or one with account_type null when
-- nothing was. debits is the month's positive amounts, credits its negative ones (so
-- debits + credits is the net). The month calendar of revenue_by_month and account_type_by_month.
--   select month, account_type, debits + credits as net from postings_by_month('latest')
-- Summed from intermediate.int_ledger_movements (what each snapshot moved, per account and day)
-- rather than from every posting: the same sums as postings_at's, at the cost of the days.
create or replace macro postings_by_month(snapshot_ref) as table
with

snapshot as (
    select * from snapshot_at(snapshot_ref)
),

daily as (
    -- Per day and account, the postings live in the snapshot (postings > 0: some are).
    select
        s.realm_id,
        s.snapshot_id,
        s.server_at as snapshot_at,
        m.txn_date,
        m.account_id,
        sum(m.debits) as debits,
        sum(m.credits) as credits,
    from snapshot as s
    inner join intermediate.int_ledger_movements as m
        on m.realm_id = s.realm_id and m.snapshot_seq <= s.snapshot_seq
    where m.txn_date is not null
    group by all
    having sum(m.postings) > 0
),

postings as (
    select
        d.*,
        a.account_type,
    from daily as d
    left join intermediate.int_accounts_latest as a
        on a.realm_id = d.realm_id and a.account_id = d.account_id
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
        sum(debits) as debits,
        sum(credits) as credits,
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
