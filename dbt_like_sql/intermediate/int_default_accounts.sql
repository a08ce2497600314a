-- The accounts each company's transactions post to when they name none, one row per company:
-- Accounts Receivable, Accounts Payable, Undeposited Funds (int_accounts_latest.is_default_for)
-- and the sales tax liability (the default tax agency's "<agency> Payable" of
-- int_sales_tax_accounts, else the default sales tax account).
-- Apart from int_accounts_latest, which changes whenever an account's balance moves (every
-- nightly): a build that rebuilds this table with the same rows counts it unchanged, so
-- int_ledger_postings is recomputed whole only when a default account really changes.
-- #UNIQUE_BY(realm_id)
with

accounts as (
    select
        realm_id,
        any_value(account_id) filter (where is_default_for = 'accounts_receivable')
            as accounts_receivable_id,
        any_value(account_id) filter (where is_default_for = 'accounts_payable')
            as accounts_payable_id,
        any_value(account_id) filter (where is_default_for = 'undeposited_funds')
            as undeposited_funds_id,
        any_value(account_id) filter (where is_default_for = 'sales_tax') as sales_tax_id,
    from intermediate.int_accounts_latest
    group by realm_id
),

tax as (
    select
        realm_id,
        any_value(default_liability_account_id) as default_liability_account_id,
    from intermediate.int_sales_tax_accounts
    group by realm_id
)

select
    a.realm_id,  -- #NO_NULLS
    a.accounts_receivable_id,
    a.accounts_payable_id,
    a.undeposited_funds_id,
    coalesce(t.default_liability_account_id, a.sales_tax_id) as sales_tax_id,
from accounts as a
left join tax as t on a.realm_id = t.realm_id
