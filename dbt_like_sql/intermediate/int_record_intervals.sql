-- SCD2 intervals: each record version's life along the snapshot chain, folded from the manifest
-- deltas. A version becomes live at the snapshot that upserts it (valid_from_seq) and stays live
-- until the next delta of the same key (valid_to_seq, exclusive): another upsert (changed) or a
-- delete (ended_by_delete). An open interval (valid_to_seq null) is live in the latest snapshot.
-- The live set of snapshot S is every interval with valid_from_seq <= S < valid_to_seq.
-- Incremental: a new snapshot only changes the intervals of the records it has a delta for (it
-- closes their open interval and opens new ones); a build recomputes those records' intervals
-- over their whole history and replaces their rows (the incremental key is the record).
-- materialized: incremental
-- incremental_key: realm_id, entity, record_id
-- #UNIQUE_BY(realm_id, entity, record_id, valid_from_seq)
with

touched as (
    select distinct realm_id, entity, record_id
    from delta.stg_manifest_deltas
),

deltas as (
    select
        d.realm_id,
        d.entity,
        d.record_id,
        d.op,
        d.content_hash,
        d.snapshot_id,
        c.snapshot_seq,
    from staging.stg_manifest_deltas as d
    inner join intermediate.int_snapshot_chain as c
        on d.realm_id = c.realm_id and d.snapshot_id = c.snapshot_id
    semi join touched as t
        on d.realm_id = t.realm_id and d.entity = t.entity and d.record_id = t.record_id
),

sequenced as (
    select
        *,
        lead(snapshot_seq) over by_key as next_seq,
        lead(snapshot_id) over by_key as next_snapshot_id,
        lead(op) over by_key as next_op,
    from deltas
    window by_key as (partition by realm_id, entity, record_id order by snapshot_seq)
),

final as (
    select
        realm_id,
        entity,
        record_id,
        content_hash,
        row_number() over (
            partition by realm_id, entity, record_id order by snapshot_seq
        ) as version_number,
        snapshot_id as valid_from_snapshot_id,
        snapshot_seq as valid_from_seq,
        next_snapshot_id as valid_to_snapshot_id,
        next_seq as valid_to_seq,
        coalesce(next_op = 'delete', false) as is_ended_by_delete,
    from sequenced
    where op = 'upsert'
)

select
    realm_id,  -- #NO_NULLS
    entity,  -- #NO_NULLS
    record_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    version_number,
    valid_from_snapshot_id,  -- #NO_NULLS
    valid_from_seq,  -- #NO_NULLS
    valid_to_snapshot_id,
    valid_to_seq,
    is_ended_by_delete,
from final
