-- The references of each record's current version, live in its company's latest snapshot: the
-- source side of marts.reference_graph, which adds what it says about the target (whether it is
-- live, its name) when read. A record's rows change only when its own history does.
-- Incremental: a build recomputes the rows of the records whose history it wrote
-- (delta.record_history) and deletes those of the records no longer live.
-- materialized: incremental
-- incremental_key: realm_id, entity, record_id
-- incremental_delete: (realm_id, entity, record_id) in (select realm_id, entity, record_id from delta.record_history)
with

current_versions as (
    select
        realm_id,
        entity,
        record_id,
        content_hash,
        display_name,
    from delta.record_history
    where is_current
),

edges as (
    select * from intermediate.int_reference_edges
),

final as (
    select
        e.realm_id,
        e.entity,
        e.record_id,
        v.display_name,
        e.path,
        e.target_type,
        e.target_entity,
        e.target_id,
        e.is_dependency,
        e.is_self,
    from edges as e
    inner join current_versions as v
        on e.realm_id = v.realm_id
        and e.entity = v.entity
        and e.record_id = v.record_id
        and e.content_hash = v.content_hash
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
    is_dependency,
    is_self,
from final
