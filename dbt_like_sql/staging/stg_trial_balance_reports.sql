-- The TrialBalance report QBO returned with each snapshot (kept raw as evidence), one row per
-- account row: the account id and name (ColData[0]), debit (ColData[1]) and credit (ColData[2]).
-- Rows nested in sections are included; the report's TOTAL summary is not. The report period
-- and basis come from its Header.
-- #UNIQUE_BY(realm_id, snapshot_id, account_id)
with

source as (
    select
        realm_id,
        snapshot_id,
        payload,
    from lake.reports
    where report_name = 'TrialBalance'
),

rows as (
    select
        s.realm_id,
        s.snapshot_id,
        s.payload->'Header' as header,
        t.value as row,
    from source as s, json_tree(s.payload->'Rows') as t
    where t.type = 'OBJECT' and json_exists(t.value, '$.ColData')
),

renamed as (
    select
        realm_id,
        snapshot_id,
        row->'ColData'->0->>'id' as account_id,
        row->'ColData'->0->>'value' as account_name,
        coalesce(try_cast(nullif(row->'ColData'->1->>'value', '') as decimal(18, 2)), 0) as debit,
        coalesce(try_cast(nullif(row->'ColData'->2->>'value', '') as decimal(18, 2)), 0)
            as credit,
        header->>'ReportBasis' as report_basis,
        (header->>'StartPeriod')::date as period_start,
        (header->>'EndPeriod')::date as period_end,
    from rows
),

final as (
    select * from renamed
    where account_id is not null
)

select
    realm_id,  -- #NO_NULLS
    snapshot_id,  -- #NO_NULLS
    account_id,  -- #NO_NULLS
    account_name,
    debit,
    credit,
    report_basis,
    period_start,
    period_end,
from final
