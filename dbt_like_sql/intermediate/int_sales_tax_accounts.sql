-- The sales tax liability account of every tax rate, as QBO keeps it: each tax agency has a
-- liability account named after it ("<agency> Payable", the account QBO creates with the
-- agency), and a rate posts to its agency's account. default_liability_account_id is the
-- liability a tax payment pays down and tax with no rate lands in: the agency of the company's
-- default tax code (Preferences.TaxPrefs.TaxGroupCodeRef, its first rate), else the agency with
-- the lowest id that has an account, else the default sales tax account of int_accounts_latest.
-- The newest version of each list record counts (tax lists are read-only in the API).
-- #UNIQUE_BY(realm_id, tax_rate_id)
with

latest as (
    select
        realm_id,
        entity,
        record_id,
        payload,
    from staging.stg_record_versions
    where entity in ('TaxAgency', 'TaxRate', 'TaxCode', 'Preferences')
    qualify row_number() over (
        partition by realm_id, entity, record_id
        order by last_updated_at desc nulls last, first_snapshot_id desc
    ) = 1
),

accounts as (
    select * from intermediate.int_accounts_latest
),

agency_accounts as (
    select
        g.realm_id,
        g.record_id as agency_id,
        min(a.account_id order by try_cast(a.account_id as bigint), a.account_id) as account_id,
    from latest as g
    inner join accounts as a
        on g.realm_id = a.realm_id
        and lower(a.account_name) = lower(g.payload->>'$.DisplayName' || ' Payable')
    where g.entity = 'TaxAgency'
    group by all
),

rates as (
    select
        realm_id,
        record_id as tax_rate_id,
        payload->>'$.AgencyRef.value' as agency_id,
    from latest
    where entity = 'TaxRate'
),

default_codes as (
    select
        realm_id,
        payload->>'$.TaxPrefs.TaxGroupCodeRef.value' as tax_code_id,
    from latest
    where entity = 'Preferences'
),

code_rates as (
    select
        c.realm_id,
        c.record_id as tax_code_id,
        d.detail->>'$.TaxRateRef.value' as tax_rate_id,
        d.position,
    from latest as c,
        unnest(
            coalesce(try_cast(c.payload->'$.SalesTaxRateList.TaxRateDetail' as json[]), [])
        ) with ordinality as d(detail, position)
    where c.entity = 'TaxCode' and (d.detail->>'$.TaxRateRef.value') is not null
),

default_agencies as (
    select
        dc.realm_id,
        arg_min(r.agency_id, cr.position) as agency_id,
    from default_codes as dc
    inner join code_rates as cr
        on dc.realm_id = cr.realm_id and dc.tax_code_id = cr.tax_code_id
    left join rates as r on cr.realm_id = r.realm_id and cr.tax_rate_id = r.tax_rate_id
    group by all
),

realm_defaults as (
    select
        a.realm_id,
        coalesce(
            any_value(a.account_id) filter (where a.agency_id = da.agency_id),
            arg_min(a.account_id, (try_cast(a.agency_id as bigint), a.agency_id))
        ) as account_id,
    from agency_accounts as a
    left join default_agencies as da on a.realm_id = da.realm_id
    group by all
),

fallbacks as (
    select
        realm_id,
        any_value(account_id) filter (where is_default_for = 'sales_tax') as account_id,
    from accounts
    group by all
),

final as (
    select
        r.realm_id,
        r.tax_rate_id,
        r.agency_id,
        coalesce(aa.account_id, rd.account_id, f.account_id) as liability_account_id,
        coalesce(rd.account_id, f.account_id) as default_liability_account_id,
    from rates as r
    left join agency_accounts as aa
        on r.realm_id = aa.realm_id and r.agency_id = aa.agency_id
    left join realm_defaults as rd on r.realm_id = rd.realm_id
    left join fallbacks as f on r.realm_id = f.realm_id
)

select
    realm_id,  -- #NO_NULLS
    tax_rate_id,  -- #NO_NULLS
    agency_id,
    liability_account_id,
    default_liability_account_id,
from final
