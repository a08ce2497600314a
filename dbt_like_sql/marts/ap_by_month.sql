-- Accounts Payable by month in each company's latest snapshot: the balance owed to vendors at
-- each month's end (as QBO's BalanceSheet shows it as of that day), what was billed and what was
-- paid in the month. ap_by_month(snapshot) gives the same as of any snapshot.
-- materialized: view
-- #UNIQUE_BY(realm_id, month)
select
    realm_id,  -- #NO_NULLS
    snapshot_id,  -- #NO_NULLS
    month,  -- #NO_NULLS
    month_end,
    billed,
    paid,
    ap_balance,  -- #NO_NULLS
from ap_by_month('latest')
