-- How each snapshot moved the ledger: per snapshot, transaction date and account, the postings
-- (int_ledger_postings) of the transaction versions that became live in it, less those of the
-- versions that stopped being live in it (edited, voided or deleted). debits sums the moved
-- postings' positive amounts, credits their negative ones, postings counts them (+1 live, -1 no
-- longer). Summed over the snapshots up to S, they give the ledger as it stood in S:
--   select account_id, sum(debits + credits) from intermediate.int_ledger_movements
--   where snapshot_seq <= 3 group by all
-- marts.trial_balance, marts.trial_balance_check and the by-month macros (postings_by_month)
-- read it instead of joining every posting with the intervals, so their cost follows the number
-- of accounts and days, not of transactions.
-- Incremental: a snapshot's movements are those of the intervals starting or ending in it, all
-- among the records the snapshot has a delta for (delta.int_record_intervals), so a build adds
-- the rows of its new snapshots; a snapshot whose deltas post nothing has no row.
-- materialized: incremental
-- incremental_key: realm_id, snapshot_seq
with

new_snapshots as (
    select distinct
        c.realm_id,
        c.snapshot_seq,
    from delta.stg_manifest_deltas as d
    inner join intermediate.int_snapshot_chain as c
        on d.realm_id = c.realm_id and d.snapshot_id = c.snapshot_id
),

boundaries as (
    -- The transaction versions that became live (+1) or stopped being live (-1) in a new snapshot.
    select i.realm_id, i.entity, i.record_id, i.content_hash, i.valid_from_seq as snapshot_seq,
        1 as sign,
    from delta.int_record_intervals as i
    semi join new_snapshots as s
        on i.realm_id = s.realm_id and i.valid_from_seq = s.snapshot_seq
    union all
    select i.realm_id, i.entity, i.record_id, i.content_hash, i.valid_to_seq, -1,
    from delta.int_record_intervals as i
    semi join new_snapshots as s
        on i.realm_id = s.realm_id and i.valid_to_seq = s.snapshot_seq
),

moved as (
    select
        b.realm_id,
        b.snapshot_seq,
        p.txn_date,
        p.account_id,
        coalesce(sum(b.sign * p.amount) filter (where p.amount > 0), 0) as debits,
        coalesce(sum(b.sign * p.amount) filter (where p.amount < 0), 0) as credits,
        sum(b.sign)::bigint as postings,
    from boundaries as b
    inner join intermediate.int_ledger_postings as p
        on p.realm_id = b.realm_id
        and p.entity = b.entity
        and p.record_id = b.record_id
        and p.content_hash = b.content_hash
    group by all
)

select
    realm_id,  -- #NO_NULLS
    snapshot_seq,  -- #NO_NULLS
    txn_date,
    account_id,
    debits::decimal(18, 2) as debits,  -- #NO_NULLS
    credits::decimal(18, 2) as credits,  -- #NO_NULLS
    postings,  -- #NO_NULLS
from moved
where debits <> 0 or credits <> 0 or postings <> 0
