-- The trial balance of every live snapshot, computed from the transactions live in it (the
-- postings of int_ledger_postings, whose rules its header documents): one row per snapshot and
-- account with its all-time balance (debit > 0, credit < 0, split into debit and credit columns
-- as QBO's report shows them). Sums of debit and credit agree in every snapshot by construction;
-- postings with no account (account_id null) are kept so that they do not go unnoticed.
-- Summed from intermediate.int_ledger_movements (what each snapshot moved, per account and day),
-- so the cost follows the number of snapshots and accounts, not of transactions.
-- #UNIQUE_BY(realm_id, snapshot_id, account_id)
with

chain as (
    select * from intermediate.int_snapshot_chain
),

per_step as (
    select
        realm_id,
        account_id,
        snapshot_seq,
        sum(debits + credits) as movement,
    from intermediate.int_ledger_movements
    group by all
),

grid as (
    select
        c.realm_id,
        c.snapshot_id,
        c.snapshot_seq,
        c.is_live,
        a.account_id,
    from chain as c
    inner join (select distinct realm_id, account_id from per_step) as a
        on c.realm_id = a.realm_id
),

balances as (
    select
        g.realm_id,
        g.snapshot_id,
        g.snapshot_seq,
        g.is_live,
        g.account_id,
        sum(coalesce(s.movement, 0)) over (
            partition by g.realm_id, g.account_id order by g.snapshot_seq
        ) as balance,
    from grid as g
    left join per_step as s
        on g.realm_id = s.realm_id
        and g.account_id is not distinct from s.account_id
        and g.snapshot_seq = s.snapshot_seq
),

final as (
    select
        b.realm_id,
        b.snapshot_id,
        b.snapshot_seq,
        b.account_id,
        a.account_name,
        a.account_type,
        a.classification,
        b.balance::decimal(18, 2) as balance,
        greatest(b.balance, 0)::decimal(18, 2) as debit,
        greatest(-b.balance, 0)::decimal(18, 2) as credit,
    from balances as b
    left join intermediate.int_accounts_latest as a
        on b.realm_id = a.realm_id and b.account_id = a.account_id
    where b.is_live
)

select
    realm_id,  -- #NO_NULLS
    snapshot_id,  -- #NO_NULLS
    snapshot_seq,
    account_id,
    account_name,
    account_type,
    classification,
    balance,  -- #NO_NULLS
    debit,
    credit,
from final
order by realm_id, snapshot_seq, account_id
