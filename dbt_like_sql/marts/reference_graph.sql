-- The reference graph of each company's latest snapshot: which live record points to which.
-- is_resolved: the target is live in the same snapshot. is_dangling: a reference restore depends
-- on (int_reference_edges.is_dependency) whose target is missing, which a restore would trip over.
-- Non-dependency references (tax codes such as TAX/NON, currency codes) are never dangling:
-- QBO uses pseudo ids for them.
-- Incremental: the rows of a record change when its current version does, or when that of a
-- record it points to does (resolved, dangling, the target's name): a build recomputes every
-- reference of those records, the ones whose history it wrote (delta.record_history) and the
-- ones pointing to them, and deletes the rows of the records it wrote that are no longer live.
-- materialized: incremental
-- incremental_key: realm_id, entity, record_id
-- incremental_delete: (realm_id, entity, record_id) in (select realm_id, entity, record_id from delta.record_history)
with

touched as (
    select distinct realm_id, entity, record_id
    from delta.record_history
),

current_versions as (
    select
        realm_id,
        entity,
        record_id,
        content_hash,
        display_name,
    from marts.record_history
    where is_current
),

edges as (
    select * from intermediate.int_reference_edges
),

pointing_to_touched as (
    select distinct e.realm_id, e.entity, e.record_id
    from edges as e
    semi join touched as t
        on e.realm_id = t.realm_id and e.target_entity = t.entity and e.target_id = t.record_id
),

rebuilt as (
    select * from touched
    union
    select * from pointing_to_touched
),

rebuilt_edges as (
    select * from edges
    semi join rebuilt using (realm_id, entity, record_id)
),

live_edges as (
    select
        e.*,
        v.display_name,
    from rebuilt_edges as e
    inner join current_versions as v
        on e.realm_id = v.realm_id
        and e.entity = v.entity
        and e.record_id = v.record_id
        and e.content_hash = v.content_hash
),

final as (
    select
        l.realm_id,
        l.entity,
        l.record_id,
        l.display_name,
        l.path,
        l.target_type,
        l.target_entity,
        l.target_id,
        t.display_name as target_display_name,
        l.is_dependency,
        l.is_self,
        t.record_id is not null as is_resolved,
        l.is_dependency and t.record_id is null as is_dangling,
    from live_edges as l
    left join current_versions as t
        on l.realm_id = t.realm_id
        and l.target_entity = t.entity
        and l.target_id = t.record_id
)

select
    realm_id,  -- #NO_NULLS
    entity,  -- #NO_NULLS
    record_id,  -- #NO_NULLS
    display_name,
    path,  -- #NO_NULLS
    target_type,
    target_entity,
    target_id,  -- #NO_NULLS
    target_display_name,
    is_dependency,
    is_self,
    is_resolved,
    is_dangling,
from final
order by realm_id, entity, record_id, path, target_id
