-- The reference graph of each company's latest snapshot: which live record points to which.
-- is_resolved: the target is live in the same snapshot. is_dangling: a reference restore depends
-- on (int_reference_edges.is_dependency) whose target is missing, which a restore would trip over.
-- Non-dependency references (tax codes such as TAX/NON, currency codes) are never dangling:
-- QBO uses pseudo ids for them.
-- A view: what it says about a target changes with the target's history (a deleted customer
-- leaves every invoice pointing to it dangling), so it is joined when read, over the live
-- references kept incrementally in intermediate.int_live_reference_edges.
-- materialized: view
with

current_versions as (
    select
        realm_id,
        entity,
        record_id,
        display_name,
    from marts.record_history
    where is_current
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
    from intermediate.int_live_reference_edges as l
    left join current_versions as t
        on l.realm_id = t.realm_id
        and l.target_entity = t.entity
        and l.target_id = t.record_id
)

select
    realm_id,
    entity,
    record_id,
    display_name,
    path,
    target_type,
    target_entity,
    target_id,
    target_display_name,
    is_dependency,
    is_self,
    is_resolved,
    is_dangling,
from final
