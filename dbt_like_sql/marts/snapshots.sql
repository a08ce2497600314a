-- The snapshot catalogue: one row per committed snapshot of each company, newest last, with its
-- place in the chain (snapshot_seq, previous), what the writer counted, and the live
-- records and changes rebuilt from the lake (which must agree with the commit record).
-- #UNIQUE_BY(realm_id, snapshot_id)
with

snapshots as (
    select * from staging.stg_snapshots
),

chain as (
    select * from intermediate.int_snapshot_chain
),

per_entity as (
    select
        realm_id,
        snapshot_id,
        sum(live_records) as live_records_rebuilt,
        sum(added) as added,
        sum(changed) as changed,
        sum(deleted) as deleted,
        count(*) filter (where live_records > 0) as entities,
    from marts.snapshot_entities
    group by all
),

final as (
    select
        s.realm_id,
        s.snapshot_id,
        c.snapshot_seq,
        s.status,
        s.snapshot_kind,
        s.company_name,
        s.server_at,
        s.committed_at,
        s.changed_since_at,
        s.parent_snapshot_id,
        c.previous_snapshot_id,
        coalesce(c.is_latest, false) as is_latest,
        s.live_records,
        p.live_records_rebuilt,
        p.entities,
        p.added,
        p.changed,
        p.deleted,
        s.versions_written,
        s.bytes_written,
        s.api_calls,
        s.duration_seconds,
        s.attachments,
    from snapshots as s
    left join chain as c
        on s.realm_id = c.realm_id and s.snapshot_id = c.snapshot_id
    left join per_entity as p
        on s.realm_id = p.realm_id and s.snapshot_id = p.snapshot_id
)

select
    realm_id,  -- #NO_NULLS
    snapshot_id,  -- #NO_NULLS
    snapshot_seq,
    status,
    snapshot_kind,
    company_name,
    server_at,
    committed_at,
    changed_since_at,
    parent_snapshot_id,
    previous_snapshot_id,
    is_latest,
    live_records,
    live_records_rebuilt,
    entities,
    added,
    changed,
    deleted,
    versions_written,
    bytes_written,
    api_calls,
    duration_seconds,
    attachments,
from final
order by realm_id, snapshot_id
