-- The computed trial balance of each snapshot that kept a TrialBalance report, compared with the
-- report, account by account (difference = computed - reported, as debit minus credit).
-- The comparison follows the report's period like QBO does: only transactions dated on or before
-- its EndPeriod count, and income and expense (Revenue, Expense classifications) before its
-- StartPeriod are closed into Retained Earnings (the report is fiscal-year-to-date for them).
-- is_matching is true when the difference is under half a cent.
-- #UNIQUE_BY(realm_id, snapshot_id, account_id)
with

reports as (
    select * from staging.stg_trial_balance_reports
),

periods as (
    select distinct
        realm_id,
        snapshot_id,
        period_start,
        period_end,
    from reports
),

chain as (
    select * from intermediate.int_snapshot_chain
),

accounts as (
    select * from intermediate.int_accounts_latest
),

retained as (
    select realm_id, account_id as retained_earnings_id,
    from accounts
    where is_default_for = 'retained_earnings'
),

live_postings as (
    -- The postings live in the report's snapshot, by day and account: what the snapshots up to
    -- it moved (intermediate.int_ledger_movements); postings counts the live ones.
    select
        m.realm_id,
        c.snapshot_id,
        m.txn_date,
        m.account_id,
        sum(m.debits + m.credits) as amount,
        sum(m.postings) as postings,
    from periods as r
    inner join chain as c on r.realm_id = c.realm_id and r.snapshot_id = c.snapshot_id
    inner join intermediate.int_ledger_movements as m
        on m.realm_id = c.realm_id and m.snapshot_seq <= c.snapshot_seq
    where r.period_end is null or m.txn_date is null or m.txn_date <= r.period_end
    group by all
),

closed as (
    select
        l.realm_id,
        l.snapshot_id,
        case
            when a.classification in ('Revenue', 'Expense')
                and r.period_start is not null
                and l.txn_date < r.period_start
                then coalesce(re.retained_earnings_id, l.account_id)
            else l.account_id
        end as account_id,
        l.amount,
        l.postings,
    from live_postings as l
    inner join periods as r on l.realm_id = r.realm_id and l.snapshot_id = r.snapshot_id
    left join accounts as a on l.realm_id = a.realm_id and l.account_id = a.account_id
    left join retained as re on l.realm_id = re.realm_id
),

computed as (
    select
        realm_id,
        snapshot_id,
        account_id,
        sum(amount) as computed_balance,
    from closed
    where account_id is not null
    group by all
    having sum(postings) > 0
),

reported as (
    select
        realm_id,
        snapshot_id,
        account_id,
        any_value(account_name) as reported_name,
        sum(debit - credit) as reported_balance,
    from reports
    group by all
),

final as (
    select
        coalesce(c.realm_id, r.realm_id) as realm_id,
        coalesce(c.snapshot_id, r.snapshot_id) as snapshot_id,
        coalesce(c.account_id, r.account_id) as account_id,
        coalesce(a.account_name, r.reported_name) as account_name,
        coalesce(c.computed_balance, 0)::decimal(18, 2) as computed_balance,
        coalesce(r.reported_balance, 0)::decimal(18, 2) as reported_balance,
        (coalesce(c.computed_balance, 0) - coalesce(r.reported_balance, 0))::decimal(18, 2)
            as difference,
    from computed as c
    full outer join reported as r
        on c.realm_id = r.realm_id
        and c.snapshot_id = r.snapshot_id
        and c.account_id = r.account_id
    left join accounts as a
        on coalesce(c.realm_id, r.realm_id) = a.realm_id
        and coalesce(c.account_id, r.account_id) = a.account_id
)

select
    realm_id,  -- #NO_NULLS
    snapshot_id,  -- #NO_NULLS
    account_id,  -- #NO_NULLS
    account_name,
    computed_balance,
    reported_balance,
    difference,
    abs(difference) < 0.005 as is_matching,
from final
order by realm_id, snapshot_id, account_id
