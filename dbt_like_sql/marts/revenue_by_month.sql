-- Revenue, costs and net income by month in each company's latest snapshot: the profit and loss
-- QBO's ProfitAndLoss report shows for each month, computed from the transactions. The
-- revenue_by_month(snapshot) macro gives the same as the books stood in any snapshot; its header
-- says what each column sums.
-- materialized: view
-- #UNIQUE_BY(realm_id, month)
select
    realm_id,  -- #NO_NULLS
    snapshot_id,  -- #NO_NULLS
    month,  -- #NO_NULLS
    month_end,
    revenue,  -- #NO_NULLS
    cost_of_goods_sold,
    gross_profit,
    expenses,
    other_income,
    other_expenses,
    net_income,  -- #NO_NULLS
from revenue_by_month('latest')
