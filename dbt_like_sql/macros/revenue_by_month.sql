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

monthly as (
    select
        realm_id,
        snapshot_id,
        month,
        -sum(debits + credits) filter (where account_type = 'Income') as revenue,
        sum(debits + credits) filter (where account_type = 'Cost of Goods Sold')
            as cost_of_goods_sold,
        sum(debits + credits) filter (where account_type = 'Expense') as expenses,
        -sum(debits + credits) filter (where account_type = 'Other Income') as other_income,
        sum(debits + credits) filter (where account_type = 'Other Expense') as other_expenses,
    from postings_by_month(snapshot_ref)
    group by realm_id, snapshot_id, month
),

filled as (
    select
        realm_id,
        snapshot_id,
        month,
        coalesce(revenue, 0) as revenue,
        coalesce(cost_of_goods_sold, 0) as cost_of_goods_sold,
        coalesce(expenses, 0) as expenses,
        coalesce(other_income, 0) as other_income,
        coalesce(other_expenses, 0) as other_expenses,
    from monthly
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
