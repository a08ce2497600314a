-- materialized: incremental
-- incremental_key: realm_id, journal_entry_id, content_hash
-- Journal entry lines: one debit or credit to one account each.
-- One row per line of each record version: line_index is the line's position in the payload's
-- Line array (0-based, as in field_changes paths such as Line[0].Amount). The shape is the
-- record_lines macro (dbt_like_sql/macros); this file names the columns.
-- #UNIQUE_BY(realm_id, journal_entry_id, content_hash, line_index)
with

source as (
    select * from record_lines('JournalEntry')
)

select
    realm_id,  -- #NO_NULLS
    record_id as journal_entry_id,  -- #NO_NULLS
    content_hash,
    line_index,  -- #NO_NULLS
    line_id,
    detail_type,
    description,
    amount,
    line->>'$.JournalEntryLineDetail.PostingType' as posting_type,
    line->>'$.JournalEntryLineDetail.AccountRef.value' as account_id,
    line->>'$.JournalEntryLineDetail.Entity.Type' as party_type,
    line->>'$.JournalEntryLineDetail.Entity.EntityRef.value' as party_id,
    line->>'$.JournalEntryLineDetail.ClassRef.value' as class_id,
    line->>'$.JournalEntryLineDetail.DepartmentRef.value' as department_id,
from source
