-- materialized: incremental
-- incremental_key: realm_id, entity, record_id, content_hash
-- The sales tax lines (TxnTaxDetail.TaxLine) of invoices, sales receipts, credit memos and
-- refund receipts: which tax rate charged how much. record_id is the transaction's id.
-- One row per tax line of each record version; line_index is the line's position in TaxLine.
-- #UNIQUE_BY(realm_id, entity, record_id, content_hash, line_index)
with

source as (
    select
        realm_id,
        entity,
        record_id,
        content_hash,
        payload,
    from delta.stg_record_versions
    where entity in ('Invoice', 'SalesReceipt', 'CreditMemo', 'RefundReceipt')
        and json_exists(payload, '$.TxnTaxDetail.TaxLine')
),

lines as (
    select
        source.realm_id,
        source.entity,
        source.record_id,
        source.content_hash,
        l.line,
        l.line_index - 1 as line_index,
    from source,
        unnest(
            coalesce(try_cast(source.payload->'$.TxnTaxDetail.TaxLine' as json[]), [])
        ) with ordinality as l(line, line_index)
),

renamed as (
    select
        realm_id,
        entity,
        record_id,
        content_hash,
        line_index,
        line->>'$.DetailType' as detail_type,
        (line->>'$.Amount')::decimal(18,2) as amount,
        line->>'$.TaxLineDetail.TaxRateRef.value' as tax_rate_id,
        (line->>'$.TaxLineDetail.PercentBased')::boolean as is_percent_based,
        (line->>'$.TaxLineDetail.TaxPercent')::decimal(9,4) as tax_percent,
        (line->>'$.TaxLineDetail.NetAmountTaxable')::decimal(18,2) as net_amount_taxable,
    from lines
),

final as (
    select * from renamed
)

select
    realm_id,  -- #NO_NULLS
    entity,  -- #NO_NULLS
    record_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    line_index,  -- #NO_NULLS
    detail_type,
    amount,
    tax_rate_id,
    is_percent_based,
    tax_percent,
    net_amount_taxable,
from final
