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

filled as (
    -- A debit raises a balance whose normal sign is 1 (assets) and lowers one whose normal sign
    -- is -1 (liabilities); a credit does the opposite.
    select
        realm_id,
        snapshot_id,
        month,
        coalesce(sum(
            case when normal_sign > 0 then debits else -credits end
        ) filter (where account_type = wanted_type), 0) as increase,
        coalesce(sum(
            case when normal_sign > 0 then -credits else debits end
        ) filter (where account_type = wanted_type), 0) as decrease,
    from postings_by_month(snapshot_ref)
    group by realm_id, snapshot_id, month
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
