-- The newest known version of every account of each company (accounts are never deleted, only
-- deactivated), and the company's default accounts that QBO posts to when a transaction does not
-- name one: Accounts Receivable, Accounts Payable, Undeposited Funds, the sales tax liability and
-- Retained Earnings (is_default_for names the role; the lowest id wins when several qualify).
-- #UNIQUE_BY(realm_id, account_id)
with

accounts as (
    select * from staging.stg_account_versions
    qualify row_number() over (
        partition by realm_id, account_id
        order by last_updated_at desc nulls last, first_snapshot_id desc
    ) = 1
),

roles as (
    select
        *,
        case
            when account_type = 'Accounts Receivable' then 'accounts_receivable'
            when account_type = 'Accounts Payable' then 'accounts_payable'
            when account_sub_type = 'UndepositedFunds' then 'undeposited_funds'
            when account_sub_type in ('GlobalTaxPayable', 'SalesTaxPayable') then 'sales_tax'
            when account_sub_type = 'RetainedEarnings' then 'retained_earnings'
        end as account_role,
    from accounts
),

final as (
    select
        *,
        case
            when account_role is not null and row_number() over (
                partition by realm_id, account_role
                order by coalesce(is_active, true) desc, try_cast(account_id as bigint), account_id
            ) = 1 then account_role
        end as is_default_for,
    from roles
)

select
    realm_id,  -- #NO_NULLS
    account_id,  -- #NO_NULLS
    account_name,
    fully_qualified_name,
    account_number,
    account_type,
    account_sub_type,
    classification,
    is_active,
    current_balance,
    is_default_for,
from final
