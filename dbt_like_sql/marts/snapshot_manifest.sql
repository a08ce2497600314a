-- materialized: view
-- The manifest of every live snapshot: each (entity, id, content hash) live in it. A view over
-- the SCD2 intervals, so it costs nothing to store; filter it by snapshot_id.
with

chain as (
    select * from intermediate.int_snapshot_chain
    where is_live
),

intervals as (
    select * from intermediate.int_record_intervals
),

final as (
    select
        c.realm_id,
        c.snapshot_id,
        i.entity,
        i.record_id,
        i.content_hash,
    from chain as c
    inner join intervals as i
        on c.realm_id = i.realm_id
        and i.valid_from_seq <= c.snapshot_seq
        and (i.valid_to_seq is null or i.valid_to_seq > c.snapshot_seq)
)

select
    realm_id,
    snapshot_id,
    entity,
    record_id,
    content_hash,
from final
