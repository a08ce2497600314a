-- The general-ledger postings of every transaction version, derived from its payload with QBO's
-- accrual-basis rules. amount > 0 is a debit, amount < 0 a credit; each transaction's postings
-- sum to zero. An account the payload does not name is the company's default one
-- (int_accounts_latest.is_default_for). When a payload's own numbers disagree (lines that do not
-- add up to the total), the residual is posted with no account (posting_role 'unbalanced') so
-- that the trial balance still balances and the discrepancy stays visible.
--
-- Posting rules (debit first):
--   Invoice        Dr A/R total                 | Cr income per item line (line's ItemAccountRef,
--                                               |    else the item's income account)
--                  Dr discount account per discount line | Cr sales tax: each TaxLine to its
--                  rate's agency liability, tax no line carries to the default liability
--                  (int_sales_tax_accounts)
--                  Dr the item's COGS (expense) account | Cr its inventory asset account, per
--                  line of an inventory item: Qty x the item's PurchaseCost
--   SalesReceipt   Dr deposit-to (else Undeposited Funds) total | Cr income lines, tax; Dr discounts
--   CreditMemo     the reverse of an invoice (Cr A/R total)
--   RefundReceipt  the reverse of a sales receipt (Cr the account paid from)
--   Payment        Dr deposit-to (else Undeposited Funds) | Cr A/R, total
--   Bill           Dr expense per line (account lines: AccountRef; item lines: the item's
--                  expense account, or its asset account for inventory) | Cr A/P total
--   VendorCredit   the reverse of a bill
--   Purchase       Dr expense lines | Cr the paying bank or card account (reversed when Credit)
--   BillPayment    Dr A/P | Cr the bank (check) or card account, total
--   Deposit        Dr deposit-to total, Dr cash-back account cash-back amount | Cr per line:
--                  Undeposited Funds for a line that deposits a payment or receipt (LinkedTxn),
--                  else the line's account (Undeposited Funds when it names none)
--   JournalEntry   each line as its PostingType says
--   Transfer       Dr to-account | Cr from-account, amount
--   CreditCardPayment Dr the card account | Cr the bank account, amount
--   InventoryAdjustment Dr each item's asset account QtyDiff x PurchaseCost | Cr AdjustAccountRef
--                  (the sides swap for a negative QtyDiff)
--   TaxPayment     Dr the default sales tax liability | Cr PaymentAccountRef, PaymentAmount
--                  (swapped for a Refund); it posts on its PaymentDate
-- Items are read as they were when the transaction version was first captured (its first
-- snapshot), so a later change to an item never rewrites an earlier snapshot's books; inventory
-- is valued at that version's PurchaseCost (QBO values it FIFO, which differs once costs move).
-- A group-item line posts through its member lines (GroupLineDetail.Line), as QBO posts a
-- bundle. Not derived: multicurrency revaluation.
--
-- Incremental (#19): a transaction version's postings never change once written (its payload is
-- fixed, and the items are read as of its first snapshot), so a build posts only the versions it
-- added to the staging tables (delta.stg_*) and appends their rows; an edited, voided or deleted
-- transaction keeps its earlier versions' postings (marts.trial_balance reads them through the
-- versions' intervals). The default accounts are the one input read as of now: when
-- int_default_accounts or int_sales_tax_accounts changes, the build recomputes every version.
-- materialized: incremental
-- incremental_key: realm_id, entity, record_id, content_hash
-- incremental_rebuild_on: intermediate.int_default_accounts, intermediate.int_sales_tax_accounts
with

tax_rates as (
    select * from intermediate.int_sales_tax_accounts
),

defaults as (
    select
        realm_id,
        accounts_receivable_id as ar_id,
        accounts_payable_id as ap_id,
        undeposited_funds_id as uf_id,
        sales_tax_id as tax_id,
    from intermediate.int_default_accounts
),

sales_entity_lines as (
    select 'Invoice' as entity, invoice_id as record_id, 1 as sign, * exclude (invoice_id)
    from delta.stg_invoice_line_versions
    union all by name
    select 'SalesReceipt' as entity, sales_receipt_id as record_id, 1 as sign,
        * exclude (sales_receipt_id)
    from delta.stg_sales_receipt_line_versions
    union all by name
    select 'CreditMemo' as entity, credit_memo_id as record_id, -1 as sign,
        * exclude (credit_memo_id)
    from delta.stg_credit_memo_line_versions
    union all by name
    select 'RefundReceipt' as entity, refund_receipt_id as record_id, -1 as sign,
        * exclude (refund_receipt_id)
    from delta.stg_refund_receipt_line_versions
),

sales_lines as (
    -- A group line posts through its member lines, as QBO posts a group item.
    select * from sales_entity_lines
    where detail_type is distinct from 'GroupLineDetail'
    union all by name
    select
        realm_id,
        entity,
        record_id,
        if(entity in ('CreditMemo', 'RefundReceipt'), -1, 1) as sign,
        content_hash,
        detail_type,
        amount,
        item_id,
        quantity,
        income_account_id,
    from delta.stg_sales_group_component_line_versions
    where entity in ('Invoice', 'SalesReceipt', 'CreditMemo', 'RefundReceipt')
),

sales_headers as (
    select 'Invoice' as entity, invoice_id as record_id, 1 as sign, realm_id, content_hash,
        txn_date, total_amount, total_tax, coalesce(ar_account_id, '') as header_account_id,
        'ar' as header_role,
    from delta.stg_invoice_versions
    union all
    select 'SalesReceipt', sales_receipt_id, 1, realm_id, content_hash, txn_date, total_amount,
        total_tax, coalesce(deposit_to_account_id, ''), 'uf',
    from delta.stg_sales_receipt_versions
    union all
    select 'CreditMemo', credit_memo_id, -1, realm_id, content_hash, txn_date, total_amount,
        total_tax, coalesce(ar_account_id, ''), 'ar',
    from delta.stg_credit_memo_versions
    union all
    select 'RefundReceipt', refund_receipt_id, -1, realm_id, content_hash, txn_date,
        total_amount, total_tax, coalesce(deposit_to_account_id, ''), 'uf',
    from delta.stg_refund_receipt_versions
),

expense_lines as (
    select 'Bill' as entity, bill_id as record_id, * exclude (bill_id)
    from delta.stg_bill_line_versions
    union all by name
    select 'VendorCredit' as entity, vendor_credit_id as record_id, * exclude (vendor_credit_id)
    from delta.stg_vendor_credit_line_versions
    union all by name
    select 'Purchase' as entity, purchase_id as record_id, * exclude (purchase_id)
    from delta.stg_purchase_line_versions
),

expense_headers as (
    select 'Bill' as entity, bill_id as record_id, 1 as sign, realm_id, content_hash, txn_date,
        total_amount, ap_account_id as header_account_id, 'ap' as header_role,
    from delta.stg_bill_versions
    union all
    select 'VendorCredit', vendor_credit_id, -1, realm_id, content_hash, txn_date, total_amount,
        ap_account_id, 'ap',
    from delta.stg_vendor_credit_versions
    union all
    select 'Purchase', purchase_id, if(coalesce(is_credit, false), -1, 1), realm_id,
        content_hash, txn_date, total_amount, payment_account_id, 'paid from',
    from delta.stg_purchase_versions
),

item_versions as (
    -- Every item version with the snapshots it was live in.
    select
        s.realm_id,
        s.item_id,
        s.item_type,
        s.income_account_id,
        s.expense_account_id,
        s.asset_account_id,
        s.purchase_cost,
        case when s.item_type = 'Inventory' then s.asset_account_id else s.expense_account_id end
            as purchase_account_id,
        r.valid_from_seq,
        r.valid_to_seq,
    from staging.stg_item_versions as s
    inner join intermediate.int_record_intervals as r
        on s.realm_id = r.realm_id
        and r.entity = 'Item'
        and s.item_id = r.record_id
        and s.content_hash = r.content_hash
),

document_lines as (
    -- The sales and the purchase lines, in one set: what they share is read once, below.
    select 'sales' as side, * from sales_lines
    union all by name
    select 'purchase' as side, * from expense_lines
),

item_refs as (
    select distinct realm_id, entity, record_id, content_hash, item_id,
    from (
        select realm_id, entity, record_id, content_hash, item_id, from document_lines
        union all
        select realm_id, 'InventoryAdjustment', inventory_adjustment_id, content_hash, item_id,
        from delta.stg_inventory_adjustment_line_versions
    )
    where item_id is not null
),

captured as (
    -- The snapshot where each transaction version naming an item first appeared.
    select i.realm_id, i.entity, i.record_id, i.content_hash, min(i.valid_from_seq) as first_seq,
    from intermediate.int_record_intervals as i
    semi join item_refs as r
        on i.realm_id = r.realm_id
        and i.entity = r.entity
        and i.record_id = r.record_id
        and i.content_hash = r.content_hash
    group by all
),

items as (
    -- The item each line names, as it was when the transaction version was captured: a later
    -- change to an item (its cost, its accounts) never rewrites an earlier snapshot's books.
    select
        r.realm_id,
        r.entity,
        r.record_id,
        r.content_hash,
        r.item_id,
        v.item_type,
        v.income_account_id,
        v.expense_account_id,
        v.asset_account_id,
        v.purchase_cost,
        v.purchase_account_id,
    from item_refs as r
    inner join captured as c
        on r.realm_id = c.realm_id
        and r.entity = c.entity
        and r.record_id = c.record_id
        and r.content_hash = c.content_hash
    inner join item_versions as v
        on r.realm_id = v.realm_id
        and r.item_id = v.item_id
        and v.valid_from_seq <= c.first_seq
        and (v.valid_to_seq is null or v.valid_to_seq > c.first_seq)
),

lines as (
    -- Every sales and purchase line with its header's date and sign, and the item it names as
    -- it was when the transaction version was captured (item_* columns; null without one).
    select
        l.side,
        l.realm_id,
        l.entity,
        l.record_id,
        l.content_hash,
        l.detail_type,
        l.amount,
        l.quantity,
        l.account_id,
        l.income_account_id,
        l.discount_account_id,
        h.txn_date,
        h.sign,
        i.item_type,
        i.income_account_id as item_income_account_id,
        i.expense_account_id as item_expense_account_id,
        i.asset_account_id as item_asset_account_id,
        i.purchase_cost as item_purchase_cost,
        i.purchase_account_id as item_purchase_account_id,
    from document_lines as l
    inner join (
        select * from sales_headers
        union all by name
        select * from expense_headers
    ) as h
        on l.realm_id = h.realm_id
        and l.entity = h.entity
        and l.record_id = h.record_id
        and l.content_hash = h.content_hash
    left join items as i
        on l.realm_id = i.realm_id
        and l.entity = i.entity
        and l.record_id = i.record_id
        and l.content_hash = i.content_hash
        and l.item_id = i.item_id
),

inventory_sales as (
    select
        realm_id, entity, record_id, content_hash, txn_date, sign,
        item_expense_account_id as expense_account_id,
        item_asset_account_id as asset_account_id,
        round(coalesce(quantity, 0) * item_purchase_cost, 2) as cost,
    from lines
    where side = 'sales'
        and detail_type = 'SalesItemLineDetail'
        and item_type = 'Inventory'
        and item_expense_account_id is not null
        and item_asset_account_id is not null
),

sales_postings as (
    select
        h.realm_id, h.entity, h.record_id, h.content_hash, h.txn_date,
        coalesce(
            nullif(h.header_account_id, ''), if(h.header_role = 'ar', d.ar_id, d.uf_id)
        ) as account_id,
        h.sign * h.total_amount as amount,
        'total' as posting_role,
    from sales_headers as h
    left join defaults as d on h.realm_id = d.realm_id
    union all
    select
        t.realm_id, t.entity, t.record_id, t.content_hash, h.txn_date,
        coalesce(r.liability_account_id, d.tax_id),
        -h.sign * t.amount,
        'sales tax',
    from delta.stg_sales_tax_line_versions as t
    inner join sales_headers as h
        on t.realm_id = h.realm_id
        and t.entity = h.entity
        and t.record_id = h.record_id
        and t.content_hash = h.content_hash
    left join tax_rates as r on t.realm_id = r.realm_id and t.tax_rate_id = r.tax_rate_id
    left join defaults as d on t.realm_id = d.realm_id
    where coalesce(t.amount, 0) <> 0
    union all
    select
        h.realm_id, h.entity, h.record_id, h.content_hash, h.txn_date,
        d.tax_id,
        -h.sign * (coalesce(h.total_tax, 0) - coalesce(t.amount, 0)),
        'sales tax',
    from sales_headers as h
    left join (
        select realm_id, entity, record_id, content_hash, sum(amount) as amount,
        from delta.stg_sales_tax_line_versions
        group by all
    ) as t
        on h.realm_id = t.realm_id
        and h.entity = t.entity
        and h.record_id = t.record_id
        and h.content_hash = t.content_hash
    left join defaults as d on h.realm_id = d.realm_id
    where coalesce(h.total_tax, 0) <> coalesce(t.amount, 0)
    union all
    select
        c.realm_id, c.entity, c.record_id, c.content_hash, c.txn_date,
        unnest([c.expense_account_id, c.asset_account_id]),
        unnest([c.sign * c.cost, -c.sign * c.cost]),
        unnest(['cost of goods sold', 'inventory asset']),
    from inventory_sales as c
    union all
    select
        realm_id, entity, record_id, content_hash, txn_date,
        case
            when detail_type = 'DiscountLineDetail' then discount_account_id
            else coalesce(income_account_id, item_income_account_id)
        end,
        case when detail_type = 'DiscountLineDetail' then sign * amount else -sign * amount end,
        case when detail_type = 'DiscountLineDetail' then 'discount' else 'income' end,
    from lines
    where side = 'sales' and detail_type in ('SalesItemLineDetail', 'DiscountLineDetail')
),

expense_postings as (
    select
        h.realm_id, h.entity, h.record_id, h.content_hash, h.txn_date,
        coalesce(h.header_account_id, if(h.header_role = 'ap', d.ap_id, null)) as account_id,
        -h.sign * h.total_amount as amount,
        'total' as posting_role,
    from expense_headers as h
    left join defaults as d on h.realm_id = d.realm_id
    union all
    select
        realm_id, entity, record_id, content_hash, txn_date,
        coalesce(account_id, item_purchase_account_id),
        sign * amount,
        'expense',
    from lines
    where side = 'purchase'
        and detail_type in ('AccountBasedExpenseLineDetail', 'ItemBasedExpenseLineDetail')
),

money_postings as (
    -- Payment
    select p.realm_id, 'Payment' as entity, p.payment_id as record_id, p.content_hash, p.txn_date,
        coalesce(p.deposit_to_account_id, d.uf_id) as account_id, p.total_amount as amount,
        'deposit' as posting_role,
    from delta.stg_payment_versions as p
    left join defaults as d on p.realm_id = d.realm_id
    union all
    select p.realm_id, 'Payment', p.payment_id, p.content_hash, p.txn_date,
        coalesce(p.ar_account_id, d.ar_id), -p.total_amount, 'total',
    from delta.stg_payment_versions as p
    left join defaults as d on p.realm_id = d.realm_id
    -- BillPayment
    union all
    select b.realm_id, 'BillPayment', b.bill_payment_id, b.content_hash, b.txn_date,
        coalesce(b.ap_account_id, d.ap_id), b.total_amount, 'total',
    from delta.stg_bill_payment_versions as b
    left join defaults as d on b.realm_id = d.realm_id
    union all
    select realm_id, 'BillPayment', bill_payment_id, content_hash, txn_date,
        coalesce(bank_account_id, credit_card_account_id), -total_amount, 'paid from',
    from delta.stg_bill_payment_versions
    -- Deposit
    union all
    select realm_id, 'Deposit', deposit_id, content_hash, txn_date, deposit_to_account_id,
        total_amount, 'total',
    from delta.stg_deposit_versions
    union all
    select realm_id, 'Deposit', deposit_id, content_hash, txn_date, cash_back_account_id,
        cash_back_amount, 'cash back',
    from delta.stg_deposit_versions
    where coalesce(cash_back_amount, 0) <> 0
    union all
    select l.realm_id, 'Deposit', l.deposit_id, l.content_hash, h.txn_date,
        if(l.linked_txn_id is not null, d.uf_id, coalesce(l.account_id, d.uf_id)), -l.amount,
        'deposited',
    from delta.stg_deposit_line_versions as l
    inner join delta.stg_deposit_versions as h
        on l.realm_id = h.realm_id and l.deposit_id = h.deposit_id
        and l.content_hash = h.content_hash
    left join defaults as d on l.realm_id = d.realm_id
    -- JournalEntry
    union all
    select l.realm_id, 'JournalEntry', l.journal_entry_id, l.content_hash, h.txn_date,
        l.account_id, if(l.posting_type = 'Credit', -l.amount, l.amount), lower(l.posting_type),
    from delta.stg_journal_entry_line_versions as l
    inner join delta.stg_journal_entry_versions as h
        on l.realm_id = h.realm_id and l.journal_entry_id = h.journal_entry_id
        and l.content_hash = h.content_hash
    where l.detail_type = 'JournalEntryLineDetail'
    -- Transfer
    union all
    select realm_id, 'Transfer', transfer_id, content_hash, txn_date, to_account_id, amount, 'to',
    from delta.stg_transfer_versions
    union all
    select realm_id, 'Transfer', transfer_id, content_hash, txn_date, from_account_id, -amount,
        'from',
    from delta.stg_transfer_versions
    -- CreditCardPayment
    union all
    select realm_id, 'CreditCardPayment', credit_card_payment_id, content_hash, txn_date,
        credit_card_account_id, amount, 'card',
    from delta.stg_credit_card_payment_versions
    union all
    select realm_id, 'CreditCardPayment', credit_card_payment_id, content_hash, txn_date,
        bank_account_id, -amount, 'paid from',
    from delta.stg_credit_card_payment_versions
    -- TaxPayment
    union all
    select t.realm_id, 'TaxPayment', t.tax_payment_id, t.content_hash, t.payment_date,
        d.tax_id, if(t.is_refund, -1, 1) * t.payment_amount, 'tax paid',
    from delta.stg_tax_payment_versions as t
    left join defaults as d on t.realm_id = d.realm_id
    union all
    select realm_id, 'TaxPayment', tax_payment_id, content_hash, payment_date,
        payment_account_id, if(is_refund, 1, -1) * payment_amount, 'paid from',
    from delta.stg_tax_payment_versions
),

adjustment_values as (
    select
        l.realm_id,
        l.inventory_adjustment_id as record_id,
        l.content_hash,
        h.txn_date,
        h.adjust_account_id,
        i.asset_account_id,
        round(coalesce(l.quantity_difference, 0) * coalesce(i.purchase_cost, 0), 2) as amount,
    from delta.stg_inventory_adjustment_line_versions as l
    inner join delta.stg_inventory_adjustment_versions as h
        on l.realm_id = h.realm_id
        and l.inventory_adjustment_id = h.inventory_adjustment_id
        and l.content_hash = h.content_hash
    inner join items as i
        on l.realm_id = i.realm_id
        and i.entity = 'InventoryAdjustment'
        and l.inventory_adjustment_id = i.record_id
        and l.content_hash = i.content_hash
        and l.item_id = i.item_id
    where l.detail_type = 'ItemAdjustmentLineDetail' and i.asset_account_id is not null
),

inventory_postings as (
    select realm_id, 'InventoryAdjustment' as entity, record_id, content_hash, txn_date,
        asset_account_id as account_id, amount, 'inventory asset' as posting_role,
    from adjustment_values
    union all
    select realm_id, 'InventoryAdjustment', record_id, content_hash, any_value(txn_date),
        any_value(adjust_account_id), -sum(amount), 'adjustment',
    from adjustment_values
    group by realm_id, record_id, content_hash
),

derived as (
    select * from sales_postings
    union all
    select * from expense_postings
    union all
    select * from money_postings
    union all
    select * from inventory_postings
),

residuals as (
    select
        realm_id,
        entity,
        record_id,
        content_hash,
        any_value(txn_date) as txn_date,
        null::varchar as account_id,
        -sum(amount) as amount,
        'unbalanced' as posting_role,
    from derived
    group by realm_id, entity, record_id, content_hash
    having abs(sum(amount)) >= 0.005
),

final as (
    select * from derived
    union all by name
    select * from residuals
)

select
    realm_id,  -- #NO_NULLS
    entity,  -- #NO_NULLS
    record_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    txn_date,
    account_id,
    posting_role,
    amount::decimal(18, 2) as amount,  -- #NO_NULLS
from final
where coalesce(amount, 0) <> 0
