-- One row per live snapshot and entity: the live record count rebuilt from the manifest deltas,
-- what changed since the parent snapshot (added, changed, deleted: the delta of this snapshot),
-- and the writer's own counts from the commit record (live_records_committed must equal
-- live_records).
-- #UNIQUE_BY(realm_id, snapshot_id, entity)
with

chain as (
    select * from intermediate.int_snapshot_chain
),

intervals as (
    select * from intermediate.int_record_intervals
),

committed as (
    select * from staging.stg_snapshot_entities
),

entity_names as (
    select distinct realm_id, entity from intervals
    union
    select distinct realm_id, entity from committed
),

grid as (
    select
        c.realm_id,
        c.snapshot_id,
        c.snapshot_seq,
        c.is_live,
        e.entity,
    from chain as c
    inner join entity_names as e on c.realm_id = e.realm_id
),

starts as (
    select
        realm_id,
        entity,
        valid_from_seq as snapshot_seq,
        count(*) as started,
        count(*) filter (where version_number = 1) as added,
        count(*) filter (where version_number > 1) as changed,
    from intervals
    group by all
),

ends as (
    select
        realm_id,
        entity,
        valid_to_seq as snapshot_seq,
        count(*) as ended,
        count(*) filter (where is_ended_by_delete) as deleted,
    from intervals
    where valid_to_seq is not null
    group by all
),

counted as (
    select
        g.realm_id,
        g.snapshot_id,
        g.snapshot_seq,
        g.is_live,
        g.entity,
        coalesce(s.added, 0) as added,
        coalesce(s.changed, 0) as changed,
        coalesce(e.deleted, 0) as deleted,
        sum(coalesce(s.started, 0) - coalesce(e.ended, 0)) over (
            partition by g.realm_id, g.entity order by g.snapshot_seq
        ) as live_records,
    from grid as g
    left join starts as s
        on g.realm_id = s.realm_id and g.entity = s.entity and g.snapshot_seq = s.snapshot_seq
    left join ends as e
        on g.realm_id = e.realm_id and g.entity = e.entity and g.snapshot_seq = e.snapshot_seq
),

final as (
    select
        counted.* exclude (is_live),
        committed.read_mode,
        committed.qbo_count,
        committed.live_records as live_records_committed,
        committed.versions_written,
    from counted
    left join committed
        on counted.realm_id = committed.realm_id
        and counted.snapshot_id = committed.snapshot_id
        and counted.entity = committed.entity
    where counted.is_live
)

select
    realm_id,  -- #NO_NULLS
    snapshot_id,  -- #NO_NULLS
    snapshot_seq,
    entity,  -- #NO_NULLS
    live_records,  -- #NO_NULLS
    added,
    changed,
    deleted,
    read_mode,
    qbo_count,
    live_records_committed,
    versions_written,
from final
