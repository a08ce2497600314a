-- The live snapshots of each company in order, numbered 1, 2, ... (snapshot_seq). Each live
-- snapshot's parent is the live snapshot before it (retention re-parents a child when it retires
-- its parent), so the chain is a line; is_chain_intact checks it.
-- #UNIQUE_BY(realm_id, snapshot_id)
-- #UNIQUE_BY(realm_id, snapshot_seq)
with

source as (
    select * from staging.stg_snapshots
    where status = 'live'
),

sequenced as (
    select
        realm_id,
        snapshot_id,
        parent_snapshot_id,
        server_at,
        row_number() over by_time as snapshot_seq,
        lag(snapshot_id) over by_time as previous_snapshot_id,
        lead(snapshot_id) over by_time as next_snapshot_id,
        lead(server_at) over by_time as next_server_at,
    from source
    window by_time as (partition by realm_id order by snapshot_id)
),

final as (
    select
        *,
        parent_snapshot_id is not distinct from previous_snapshot_id as is_chain_intact,
        next_snapshot_id is null as is_latest,
    from sequenced
)

select
    realm_id,  -- #NO_NULLS
    snapshot_id,  -- #NO_NULLS
    snapshot_seq,  -- #NO_NULLS
    parent_snapshot_id,
    previous_snapshot_id,
    next_snapshot_id,
    server_at,
    next_server_at,
    is_latest,
    is_chain_intact,  -- #ACCEPTED_VALUES(true)
from final
