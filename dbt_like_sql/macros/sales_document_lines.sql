-- sales_document_lines(entity_name): the lines of a sales document (Invoice, CreditMemo,
-- Estimate, RefundReceipt, SalesReceipt), typed: items sold (SalesItemLineDetail), discounts
-- (DiscountLineDetail), groups (GroupLineDetail) and the subtotal line (SubTotalLineDetail).
-- One row per line of each record version (see record_lines); the stg_*_line_versions models
-- of those entities call it and name their own id column.
--   select * from sales_document_lines('Invoice')
create or replace macro sales_document_lines(entity_name) as table
select
    * exclude (line),  -- the fields every line has (record_lines)
    line->>'$.SalesItemLineDetail.ItemRef.value' as item_id,
    line->>'$.SalesItemLineDetail.ItemRef.name' as item_name,
    (line->>'$.SalesItemLineDetail.Qty')::decimal(18,4) as quantity,
    (line->>'$.SalesItemLineDetail.UnitPrice')::decimal(18,6) as unit_price,
    line->>'$.SalesItemLineDetail.ItemAccountRef.value' as income_account_id,
    line->>'$.SalesItemLineDetail.ClassRef.value' as class_id,
    line->>'$.SalesItemLineDetail.TaxCodeRef.value' as tax_code,
    (line->>'$.SalesItemLineDetail.ServiceDate')::date as service_date,
    line->>'$.DiscountLineDetail.DiscountAccountRef.value' as discount_account_id,
    (line->>'$.DiscountLineDetail.PercentBased')::boolean as is_percent_discount,
    (line->>'$.DiscountLineDetail.DiscountPercent')::decimal(9,4) as discount_percent,
    line->>'$.GroupLineDetail.GroupItemRef.value' as group_item_id,
from record_lines(entity_name)
