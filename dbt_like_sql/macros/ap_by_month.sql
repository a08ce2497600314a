-- ap_by_month(snapshot_ref): Accounts Payable by month, as the books stood in the snapshot
-- snapshot_ref names (see snapshot_at), for every company: what the company owed its vendors at
-- each month's end (ap_balance, QBO's BalanceSheet "Total Accounts Payable" as of month_end),
-- what was billed in the month (billed: bills) and what came off (paid: bill payments, vendor
-- credits). Accrual basis, by transaction date.
--   select month_end, ap_balance from ap_by_month('latest')
create or replace macro ap_by_month(snapshot_ref) as table
select
    realm_id,
    snapshot_id,
    month,
    month_end,
    increase as billed,
    decrease as paid,
    balance as ap_balance,
from account_type_by_month(snapshot_ref, 'Accounts Payable', -1)
