-- Accounts Receivable by month in each company's latest snapshot: the balance customers owed at
-- each month's end (as QBO's BalanceSheet shows it as of that day), what was invoiced and what
-- was received in the month. ar_by_month(snapshot) gives the same as of any snapshot.
-- materialized: view
-- #UNIQUE_BY(realm_id, month)
select
    realm_id,  -- #NO_NULLS
    snapshot_id,  -- #NO_NULLS
    month,  -- #NO_NULLS
    month_end,
    invoiced,
    received,
    ar_balance,  -- #NO_NULLS
from ar_by_month('latest')
