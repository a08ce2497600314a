-- purchase_document_lines(entity_name): the lines of a purchase document (Bill, Purchase,
-- PurchaseOrder, VendorCredit), typed: expenses by account (AccountBasedExpenseLineDetail) or by
-- item (ItemBasedExpenseLineDetail); customer, class, billable status and tax code come from
-- whichever of the two the line carries.
-- One row per line of each record version (see record_lines); the stg_*_line_versions models
-- of those entities call it and name their own id column.
--   select * from purchase_document_lines('Bill')
create or replace macro purchase_document_lines(entity_name) as table
select
    * exclude (line),  -- the fields every line has (record_lines)
    line->>'$.AccountBasedExpenseLineDetail.AccountRef.value' as account_id,
    line->>'$.ItemBasedExpenseLineDetail.ItemRef.value' as item_id,
    (line->>'$.ItemBasedExpenseLineDetail.Qty')::decimal(18,4) as quantity,
    (line->>'$.ItemBasedExpenseLineDetail.UnitPrice')::decimal(18,6) as unit_price,
    coalesce(
        line->>'$.AccountBasedExpenseLineDetail.CustomerRef.value',
        line->>'$.ItemBasedExpenseLineDetail.CustomerRef.value'
    ) as customer_id,
    coalesce(
        line->>'$.AccountBasedExpenseLineDetail.ClassRef.value',
        line->>'$.ItemBasedExpenseLineDetail.ClassRef.value'
    ) as class_id,
    coalesce(
        line->>'$.AccountBasedExpenseLineDetail.BillableStatus',
        line->>'$.ItemBasedExpenseLineDetail.BillableStatus'
    ) as billable_status,
    coalesce(
        line->>'$.AccountBasedExpenseLineDetail.TaxCodeRef.value',
        line->>'$.ItemBasedExpenseLineDetail.TaxCodeRef.value'
    ) as tax_code,
from record_lines(entity_name)
