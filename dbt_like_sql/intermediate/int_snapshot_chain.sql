-- Every committed snapshot of each company in order, numbered 1, 2, ... (snapshot_seq): the
-- chain the manifest deltas fold along. Retired snapshots stay in the chain (retention never
-- rewrites deltas, lake/FORMAT.md) but are not live: they are hidden from listings, as_of and
-- diffs. Each snapshot's parent is the committed snapshot before it; is_chain_intact checks it.
-- #UNIQUE_BY(realm_id, snapshot_id)
-- #UNIQUE_BY(realm_id, snapshot_seq)
with

source as (
    select * from staging.stg_snapshots
),

sequenced as (
    select
        realm_id,
        snapshot_id,
        parent_snapshot_id,
        status,
        status = 'live' as is_live,
        server_at,
        row_number() over by_id as snapshot_seq,
        lag(snapshot_id) over by_id as previous_snapshot_id,
    from source
    window by_id as (partition by realm_id order by snapshot_id)
),

live_order as (
    select
        *,
        min(snapshot_seq) filter (where is_live) over (
            partition by realm_id order by snapshot_seq
            rows between current row and unbounded following
        ) as next_live_seq,
        case when is_live then row_number() over (
            partition by realm_id, is_live order by snapshot_seq desc
        ) end as live_rank_from_latest,
    from sequenced
),

final as (
    select
        *,
        parent_snapshot_id is not distinct from previous_snapshot_id as is_chain_intact,
        coalesce(live_rank_from_latest = 1, false) as is_latest,
    from live_order
)

select
    realm_id,  -- #NO_NULLS
    snapshot_id,  -- #NO_NULLS
    snapshot_seq,  -- #NO_NULLS
    status,
    is_live,
    parent_snapshot_id,
    previous_snapshot_id,
    server_at,
    next_live_seq,
    live_rank_from_latest,
    is_latest,
    is_chain_intact,  -- #ACCEPTED_VALUES(true)
from final
