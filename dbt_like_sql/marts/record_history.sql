-- Every record version with the period it was live (SCD2): valid_from / valid_to are the server
-- times of the snapshots that first and last-exclusive saw it; valid_to is null while the version
-- is live in the latest snapshot. deleted_at is set on the last version of a record that left
-- the manifest (deleted in QBO, or missing from a full read). A version that was live only in
-- snapshots retention has retired (is_in_live_snapshot false) may have lost its payload to
-- garbage collection; every other version has one (is_payload_missing is tested false).
-- Incremental: a build rewrites the rows of the records whose intervals it wrote
-- (delta.int_record_intervals); a committed snapshot's server time never changes.
-- materialized: incremental
-- incremental_key: realm_id, entity, record_id
-- #UNIQUE_BY(realm_id, entity, record_id, valid_from_snapshot_id)
with

intervals as (
    select * from delta.int_record_intervals
),

versions as (
    select * from staging.stg_record_versions
),

chain as (
    select * from intermediate.int_snapshot_chain
),

joined as (
    select
        i.realm_id,
        i.entity,
        i.record_id,
        i.version_number,
        i.content_hash,
        i.valid_from_snapshot_id,
        i.valid_to_snapshot_id,
        i.valid_from_seq,
        i.valid_to_seq,
        started.server_at as valid_from,
        ended.server_at as valid_to,
        i.valid_to_seq is null as is_current,
        i.is_ended_by_delete as is_deleted,
        case when i.is_ended_by_delete then i.valid_to_snapshot_id end as deleted_snapshot_id,
        case when i.is_ended_by_delete then ended.server_at end as deleted_at,
        v.sync_token,
        v.last_updated_at,
        v.is_active,
        v.txn_date,
        v.total_amount,
        v.display_name,
        v.payload,
        started.next_live_seq is not null
            and (i.valid_to_seq is null or started.next_live_seq < i.valid_to_seq)
            as is_in_live_snapshot,
    from intervals as i
    inner join chain as started
        on i.realm_id = started.realm_id and i.valid_from_seq = started.snapshot_seq
    left join chain as ended
        on i.realm_id = ended.realm_id and i.valid_to_seq = ended.snapshot_seq
    left join versions as v
        on i.realm_id = v.realm_id
        and i.entity = v.entity
        and i.record_id = v.record_id
        and i.content_hash = v.content_hash
),

final as (
    select
        *,
        is_in_live_snapshot and payload is null as is_payload_missing,
    from joined
)

select
    realm_id,  -- #NO_NULLS
    entity,  -- #NO_NULLS
    record_id,  -- #NO_NULLS
    version_number,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    valid_from_snapshot_id,  -- #NO_NULLS
    valid_to_snapshot_id,
    valid_from_seq,
    valid_to_seq,
    valid_from,  -- #NO_NULLS
    valid_to,
    is_current,
    is_deleted,
    deleted_snapshot_id,
    deleted_at,
    sync_token,
    last_updated_at,
    is_active,
    txn_date,
    total_amount,
    display_name,
    payload,
    is_in_live_snapshot,
    is_payload_missing,  -- #ACCEPTED_VALUES(false)
from final
