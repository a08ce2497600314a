-- The sales tax lines (TxnTaxDetail.TaxLine) of the sales documents live in each company's
-- latest snapshot (staging.stg_sales_tax_line_versions holds those of every version). Keyed by
-- the transaction's entity and record_id, so written here rather than generated from the
-- catalogue as marts.invoice_lines is.
-- materialized: view
-- #UNIQUE_BY(realm_id, entity, record_id, line_index)
select v.*
from staging.stg_sales_tax_line_versions as v
semi join intermediate.int_record_intervals as c
    on c.realm_id = v.realm_id
    and c.entity = v.entity
    and c.record_id = v.record_id
    and c.content_hash = v.content_hash
    and c.valid_to_seq is null
