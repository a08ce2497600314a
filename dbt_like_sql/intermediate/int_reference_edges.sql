-- materialized: incremental
-- incremental_key: realm_id, entity, record_id, content_hash
-- Every reference held by every record version: which record it points to, walked from the
-- reference paths of the entity catalogue (catalogue.references), so no path is repeated here.
-- Each payload is parsed once into its top-level fields (json_each), which meet the references
-- on their top_key; below it a path is split at its arrays (Line[].ItemRef -> top_key Line,
-- json_segments $, $.ItemRef) and each array is unnested in turn. Typed references (EntityRef.type, LinkedTxn.TxnType) name their
-- target in the data; target_entity is null when that name is not a catalogue entity. A typed
-- reference is a restore dependency only for the target types the catalogue lists (the others,
-- such as an invoice's LinkedTxn to a payment, are back-links).
-- Incremental: a build after new snapshots walks only the versions it added
-- (delta.stg_record_versions).
with

versions as (
    select
        realm_id,
        entity,
        record_id,
        content_hash,
        payload,
    from delta.stg_record_versions
),

refs as (
    select * from catalogue."references"
    where not contains(path, '__template__')
),

fields as (
    select
        v.realm_id,
        v.entity,
        v.record_id,
        v.content_hash,
        f.key as top_key,
        f.value as top_value,
    from versions as v, json_each(v.payload) as f
),

first_steps as (
    select distinct
        entity,
        top_key,
        json_segments[1] as first_segment,
        len(json_segments) > 1 as is_array,
    from refs
),

level_1 as (
    -- each top-level field is walked once per distinct first step, whatever the number of
    -- references below it (an invoice's Line array is unnested once, not once per reference)
    select
        f.realm_id,
        f.entity,
        f.record_id,
        f.content_hash,
        f.top_key,
        s.first_segment,
        s.is_array,
        n.node,
    from fields as f
    inner join first_steps as s on f.entity = s.entity and f.top_key = s.top_key,
        unnest(
            case
                when not s.is_array then [json_extract(f.top_value, s.first_segment)]
                else coalesce(try_cast(json_extract(f.top_value, s.first_segment) as json[]), [])
            end
        ) as n(node)
),

pairs as (
    select
        l.realm_id,
        l.entity,
        l.record_id,
        l.content_hash,
        l.node,
        r.path,
        r.targets,
        r.id_key,
        r.type_key,
        r.dependency,
        r.is_self,
        r.json_segments,
        len(r.json_segments) as depth,
    from level_1 as l
    inner join refs as r
        on l.entity = r.entity
        and l.top_key = r.top_key
        and l.first_segment = r.json_segments[1]
        and l.is_array = (len(r.json_segments) > 1)
),

level_2 as (
    select
        pairs.* exclude (node),
        n.node,
    from pairs,
        unnest(
            case
                when depth = 1 then [node]
                when depth = 2 then [json_extract(node, json_segments[2])]
                else coalesce(try_cast(json_extract(node, json_segments[2]) as json[]), [])
            end
        ) as n(node)
),

level_3 as (
    select
        level_2.* exclude (node),
        n.node,
    from level_2,
        unnest(
            case
                when depth <= 2 then [node]
                else [json_extract(node, json_segments[3])]
            end
        ) as n(node)
),

resolved as (
    select
        l.realm_id,
        l.entity,
        l.record_id,
        l.content_hash,
        l.path,
        l.dependency,
        l.targets,
        l.type_key,
        l.is_self,
        json_extract_string(l.node, '$.' || l.id_key) as target_id,
        case
            when l.type_key is not null then json_extract_string(l.node, '$.' || l.type_key)
            else l.targets[1]
        end as target_type,
    from level_3 as l
    where json_type(l.node) = 'OBJECT'
),

final as (
    select
        r.* exclude (dependency, targets, type_key),
        e.entity as target_entity,
        r.dependency and (r.type_key is null or list_contains(r.targets, e.entity))
            as is_dependency,
    from resolved as r
    left join catalogue.entities as e
        on lower(r.target_type) in (lower(e.entity), lower(e.json_key))
    where r.target_id is not null and r.target_id <> ''
)

select
    realm_id,  -- #NO_NULLS
    entity,  -- #NO_NULLS
    record_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    path,  -- #NO_NULLS
    target_type,
    target_entity,
    target_id,  -- #NO_NULLS
    is_dependency,
    is_self,
from final
