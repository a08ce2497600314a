-- revenue_by_month(snapshot_ref): the profit and loss of every month, as the books stood in the
-- snapshot snapshot_ref names (see snapshot_at), for every company: one row per month from the
-- first transaction's to the later of the last transaction's and the snapshot's. Amounts are
-- positive as QBO's ProfitAndLoss report shows them, by the type of the account posted to:
--   revenue             Income accounts (QBO's "Total Income")
--   cost_of_goods_sold  Cost of Goods Sold accounts
--   gross_profit        revenue - cost_of_goods_sold
--   expenses            Expense accounts
--   other_income        Other Income accounts;  other_expenses: Other Expense accounts
--   net_income          gross_profit - expenses + other_income - other_expenses
-- Accrual basis, by transaction date, with the posting rules of int_ledger_postings.
--   select month, revenue, net_income from revenue_by_month('2026-11-01')
create or replace macro revenue_by_month(snapshot_ref) as table
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
        -sum(amount) filter (where account_type = 'Income') as revenue,
        sum(amount) filter (where account_type = 'Cost of Goods Sold') as cost_of_goods_sold,
        sum(amount) filter (where account_type = 'Expense') as expenses,
        -sum(amount) filter (where account_type = 'Other Income') as other_income,
        sum(amount) filter (where account_type = 'Other Expense') as other_expenses,
    from postings
    group by all
),

filled as (
    select
        m.realm_id,
        m.snapshot_id,
        m.month,
        coalesce(s.revenue, 0) as revenue,
        coalesce(s.cost_of_goods_sold, 0) as cost_of_goods_sold,
        coalesce(s.expenses, 0) as expenses,
        coalesce(s.other_income, 0) as other_income,
        coalesce(s.other_expenses, 0) as other_expenses,
    from months as m
    left join sums as s on m.realm_id = s.realm_id and m.month = s.month
)

select
    realm_id,
    snapshot_id,
    month,
    last_day(month) as month_end,
    revenue::decimal(18, 2) as revenue,
    cost_of_goods_sold::decimal(18, 2) as cost_of_goods_sold,
    (revenue - cost_of_goods_sold)::decimal(18, 2) as gross_profit,
    expenses::decimal(18, 2) as expenses,
    other_income::decimal(18, 2) as other_income,
    other_expenses::decimal(18, 2) as other_expenses,
    (revenue - cost_of_goods_sold - expenses + other_income - other_expenses)::decimal(18, 2)
        as net_income,
from filled
order by realm_id, month
