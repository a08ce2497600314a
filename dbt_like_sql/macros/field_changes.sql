-- field_changes(a, b): the field-level differences of every record that is live in both
-- snapshots but changed between them (changed, deactivated, reactivated, voided): one row per
-- JSON leaf whose value differs, with its path (Line[0].Amount), the kind of difference
-- (modified, added, removed) and the old and new values (strings unquoted, everything else as
-- JSON text). is_system_field marks MetaData and SyncToken, which QBO bumps on every save.
-- Fields the catalogue lists as volatile (presigned URLs) are left out.
--   select * from field_changes('previous', 'latest') where not is_system_field
create or replace macro field_changes(a, b) as table
with

changed as (
    select * from changes(a, b)
    where action in ('changed', 'deactivated', 'reactivated', 'voided')
),

leaves as (
    select
        c.realm_id,
        c.entity,
        c.record_id,
        'old' as side,
        t.fullkey as json_path,
        t.type as json_type,
        t.value as json_value,
    from changed as c, json_tree(c.old_payload) as t
    where t.type not in ('OBJECT', 'ARRAY') or t.value::varchar in ('{}', '[]')
    union all
    select
        c.realm_id,
        c.entity,
        c.record_id,
        'new' as side,
        t.fullkey as json_path,
        t.type as json_type,
        t.value as json_value,
    from changed as c, json_tree(c.new_payload) as t
    where t.type not in ('OBJECT', 'ARRAY') or t.value::varchar in ('{}', '[]')
),

paired as (
    select
        realm_id,
        entity,
        record_id,
        json_path,
        any_value(json_value) filter (where side = 'old') as old_json,
        any_value(json_type) filter (where side = 'old') as old_type,
        any_value(json_value) filter (where side = 'new') as new_json,
        any_value(json_type) filter (where side = 'new') as new_type,
        count(*) filter (where side = 'old') > 0 as in_old,
        count(*) filter (where side = 'new') > 0 as in_new,
    from leaves
    group by all
),

differing as (
    select
        p.*,
        regexp_extract(p.json_path, '^\$\.([^.\[]+)', 1) as top_field,
    from paired as p
    where not (in_old and in_new and old_json::varchar = new_json::varchar)
)

select
    d.realm_id,
    c.old_snapshot_id,
    c.new_snapshot_id,
    d.entity,
    d.record_id,
    c.action,
    c.display_name,
    regexp_replace(d.json_path, '^\$\.?', '') as field_path,
    case
        when not d.in_old then 'added'
        when not d.in_new then 'removed'
        else 'modified'
    end as change,
    case when d.old_type = 'VARCHAR' then d.old_json->>'$' else d.old_json::varchar end as old_value,
    case when d.new_type = 'VARCHAR' then d.new_json->>'$' else d.new_json::varchar end as new_value,
    d.top_field in ('MetaData', 'SyncToken') as is_system_field,
from differing as d
inner join changed as c
    on d.realm_id = c.realm_id and d.entity = c.entity and d.record_id = c.record_id
inner join catalogue.entities as e on d.entity = e.entity
where not list_contains(e.volatile_fields, d.top_field)
order by d.realm_id, d.entity, d.record_id, d.json_path
