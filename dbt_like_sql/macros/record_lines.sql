-- record_lines(entity_name): the Line array of every version of an entity's records, one row per
-- line: realm_id, record_id, content_hash, the line as JSON, and line_index, the line's position
-- in the payload's Line array (0-based, as in field_changes paths such as Line[0].Amount).
-- entity_name is the catalogue name ('Invoice'). The staging *_lines models are built on it.
--   select * from record_lines('Deposit')
create or replace macro record_lines(entity_name) as table
with

source as (
    select
        realm_id,
        record_id,
        content_hash,
        payload,
    from staging.stg_record_versions
    where entity = entity_name
)

select
    source.realm_id,
    source.record_id,
    source.content_hash,
    l.line,
    l.line_index - 1 as line_index,
from source,
    unnest(coalesce(try_cast(source.payload->'Line' as json[]), [])) with ordinality
        as l(line, line_index)
