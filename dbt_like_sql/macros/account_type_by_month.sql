-- account_type_by_month(snapshot_ref, wanted_type, normal_sign): the month-end balance of the
-- accounts of one QBO account type (all of them together), as the books stood in the snapshot
-- snapshot_ref names, for every company: one row per month from the first transaction's to the
-- later of the last transaction's and the snapshot's. normal_sign is 1 for a debit-normal type
-- (Accounts Receivable) and -1 for a credit-normal one (Accounts Payable), so that balances are
-- positive as QBO's BalanceSheet shows them. increase and decrease are the month's postings that
-- raise and lower the balance (both positive); balance is the balance at month_end. ar_by_month
-- and ap_by_month call it.
create or replace macro account_type_by_month(snapshot_ref, wanted_type, normal_sign) as table
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
        sum(normal_sign * amount) filter (where normal_sign * amount > 0) as increase,
        -sum(normal_sign * amount) filter (where normal_sign * amount < 0) as decrease,
    from postings
    where account_type = wanted_type
    group by all
),

filled as (
    select
        m.realm_id,
        m.snapshot_id,
        m.month,
        coalesce(s.increase, 0) as increase,
        coalesce(s.decrease, 0) as decrease,
    from months as m
    left join sums as s on m.realm_id = s.realm_id and m.month = s.month
)

select
    realm_id,
    snapshot_id,
    month,
    last_day(month) as month_end,
    increase::decimal(18, 2) as increase,
    decrease::decimal(18, 2) as decrease,
    sum(increase - decrease) over (
        partition by realm_id order by month
    )::decimal(18, 2) as balance,
from filled
order by realm_id, month
