-- as_of(entity_name, at): the records of an entity as they were in the snapshot `at` names
-- (see snapshot_at: 'latest', a snapshot id or prefix, a date or a timestamp), for every company.
-- entity_name is a catalogue name or JSON key, case-insensitive; '*' means every entity, which
-- gives the snapshot's whole manifest.
--   select * from as_of('Invoice', '2026-11-01')
create or replace macro as_of(entity_name, snapshot_ref) as table
with

wanted as (
    select
        case
            when entity_name = '*' then '*'
            when count(*) = 0 then error(
                'unknown QBO entity ' || entity_name || '; see catalogue.entities'
            )
            else min(entity)
        end as entity,
    from catalogue.entities
    where lower(entity) = lower(entity_name) or lower(json_key) = lower(entity_name)
),

snapshot as (
    select * from snapshot_at(snapshot_ref)
)

select
    h.realm_id,
    s.snapshot_id,
    h.entity,
    h.record_id as id,
    h.content_hash,
    h.version_number,
    h.valid_from,
    h.sync_token,
    h.last_updated_at,
    h.is_active,
    h.txn_date,
    h.total_amount,
    h.display_name,
    h.payload,
from snapshot as s
inner join marts.record_history as h
    on h.realm_id = s.realm_id
    and h.valid_from_seq <= s.snapshot_seq
    and (h.valid_to_seq is null or h.valid_to_seq > s.snapshot_seq)
where (select entity from wanted) in ('*', h.entity)
order by h.realm_id, h.entity, h.record_id
