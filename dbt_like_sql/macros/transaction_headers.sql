-- transaction_headers(entity_name): every version of a transaction entity's records with the
-- header fields that several transaction types share, typed once: one row per (company, record,
-- content hash), as delta.stg_record_versions holds them. A field the entity does not have is
-- null; the raw payload is there for the entity's own fields. The staging models of
-- transactions (stg_invoice_versions, stg_bill_versions, ...) call it and name the columns they
-- keep.
--   select * from transaction_headers('Invoice')
create or replace macro transaction_headers(entity_name) as table
select
    realm_id,
    record_id,
    content_hash,
    first_snapshot_id,
    sync_token,
    txn_date,
    total_amount,
    payload->>'$.DocNumber' as doc_number,
    payload->>'$.CurrencyRef.value' as currency_code,
    (payload->>'$.ExchangeRate')::decimal(18,6) as exchange_rate,
    payload->>'$.PrivateNote' as private_note,
    payload->>'$.ClassRef.value' as class_id,
    payload->>'$.DepartmentRef.value' as department_id,
    payload->>'$.CustomerRef.value' as customer_id,
    payload->>'$.CustomerRef.name' as customer_name,
    payload->>'$.CustomerMemo.value' as customer_memo,
    payload->>'$.BillEmail.Address' as bill_email,
    (payload->>'$.TxnTaxDetail.TotalTax')::decimal(18,2) as total_tax,
    payload->>'$.VendorRef.value' as vendor_id,
    payload->>'$.VendorRef.name' as vendor_name,
    payload->>'$.ARAccountRef.value' as ar_account_id,
    payload->>'$.APAccountRef.value' as ap_account_id,
    payload->>'$.DepositToAccountRef.value' as deposit_to_account_id,
    payload->>'$.PaymentMethodRef.value' as payment_method_id,
    payload->>'$.SalesTermRef.value' as sales_term_id,
    (payload->>'$.DueDate')::date as due_date,
    (payload->>'$.Balance')::decimal(18,2) as balance,
    (payload->>'$.MetaData.CreateTime')::timestamptz as created_at,
    last_updated_at,
    payload,
from delta.stg_record_versions
where entity = entity_name
