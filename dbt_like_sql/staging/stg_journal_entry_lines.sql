-- Journal entry lines: one debit or credit to one account each.
-- One row per line of each record version: line_index is the line's position in the payload's
-- Line array (0-based, as in field_changes paths such as Line[0].Amount).
-- #UNIQUE_BY(realm_id, journal_entry_id, content_hash, line_index)
with

source as (
    select
        realm_id,
        record_id as journal_entry_id,
        content_hash,
        payload,
    from staging.stg_record_versions
    where entity = 'JournalEntry'
),

lines as (
    select
        source.realm_id,
        source.journal_entry_id,
        source.content_hash,
        l.line,
        l.line_index - 1 as line_index,
    from source,
        unnest(coalesce(try_cast(source.payload->'Line' as json[]), [])) with ordinality
            as l(line, line_index)
),

renamed as (
    select
        realm_id,
        journal_entry_id,
        content_hash,
        line_index,
        line->>'$.Id' as line_id,
        line->>'$.DetailType' as detail_type,
        line->>'$.Description' as description,
        (line->>'$.Amount')::decimal(18,2) as amount,
        line->>'$.JournalEntryLineDetail.PostingType' as posting_type,
        line->>'$.JournalEntryLineDetail.AccountRef.value' as account_id,
        line->>'$.JournalEntryLineDetail.Entity.Type' as party_type,
        line->>'$.JournalEntryLineDetail.Entity.EntityRef.value' as party_id,
        line->>'$.JournalEntryLineDetail.ClassRef.value' as class_id,
        line->>'$.JournalEntryLineDetail.DepartmentRef.value' as department_id,
    from lines
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    journal_entry_id,  -- #NO_NULLS
    content_hash,
    line_index,  -- #NO_NULLS
    line_id,
    detail_type,
    description,
    amount,
    posting_type,
    account_id,
    party_type,
    party_id,
    class_id,
    department_id,
from final
