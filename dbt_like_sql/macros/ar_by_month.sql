-- ar_by_month(snapshot_ref): Accounts Receivable by month, as the books stood in the snapshot
-- snapshot_ref names (see snapshot_at), for every company: what customers owed at each month's
-- end (ar_balance, QBO's BalanceSheet "Total Accounts Receivable" as of month_end), what was
-- charged to them in the month (invoiced: invoices, refunds of credits) and what came off
-- (received: payments, credit memos). Accrual basis, by transaction date.
--   select month_end, ar_balance from ar_by_month('previous')
create or replace macro ar_by_month(snapshot_ref) as table
select
    realm_id,
    snapshot_id,
    month,
    month_end,
    increase as invoiced,
    decrease as received,
    balance as ar_balance,
from account_type_by_month(snapshot_ref, 'Accounts Receivable', 1)
