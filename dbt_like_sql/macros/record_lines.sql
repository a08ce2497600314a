-- record_lines(entity_name): the Line array of every version of an entity's records, one row per
-- line: realm_id, record_id, content_hash, line_index (the line's position in the payload's Line
-- array, 0-based, as in field_changes paths such as Line[0].Amount), the fields every kind of
-- line has, typed once (line_id, line_number, detail_type, description, amount), and the line as
-- JSON for its detail. entity_name is the catalogue name ('Invoice'). The staging *_lines
-- models are built on it.
--   select * from record_lines('Deposit')
create or replace macro record_lines(entity_name) as table
with

source as (
    select
        realm_id,
        record_id,
        content_hash,
        payload,
    from delta.stg_record_versions
    where entity = entity_name
)

select
    source.realm_id,
    source.record_id,
    source.content_hash,
    l.line_index - 1 as line_index,
    l.line->>'$.Id' as line_id,
    (l.line->>'$.LineNum')::integer as line_number,
    l.line->>'$.DetailType' as detail_type,
    l.line->>'$.Description' as description,
    (l.line->>'$.Amount')::decimal(18,2) as amount,
    l.line,
from source,
    unnest(coalesce(try_cast(source.payload->'Line' as json[]), [])) with ordinality
        as l(line, line_index)
