"""What QBO puts in a company the day it is created, per country: data only.

:mod:`qbo_pipeline.sandbox.new_company` turns these tables into records. Two countries are
modelled: the United States (``US``, USD) and Canada (``CA``, CAD, GST/HST). Where the real
captures show a default record, the names, types and ids follow them (``query_account_all.json``:
the sample company's system accounts such as "Accounts Receivable (A/R)" with ``AccountSubType``
``AccountsReceivable``; ``term_doc.json``: "Net 60" is Term 4; ``paymentmethod_doc.json``: "Diners
Club" is PaymentMethod 7; ``query_item_all.json``: the "Services" and "Hours" items every new
company starts with). The rest follows Intuit's help pages on the default chart of accounts of a
new company (the accounts QBO creates for a sole proprietor that sells services and products).

Each account row is ``(Name, AccountType, AccountSubType)``; ids are given in row order from 1,
as QBO numbers a new company's accounts, and ``Classification`` follows from the type.
"""

from __future__ import annotations

from typing import NamedTuple


class Country(NamedTuple):
    """A country's defaults for a new company."""

    code: str
    name: str
    currency: tuple[str, str]
    time_zone: str
    address: dict[str, str]
    phone: str
    accounts: tuple[tuple[str, str, str], ...]
    tax_agencies: tuple[str, ...]
    tax_rates: tuple[tuple[str, str, float | int, str], ...]
    tax_codes: tuple[tuple[str, str, str, bool, tuple[str, ...], tuple[str, ...]], ...]
    """``(Id, Name, Description, Taxable, sales rate ids, purchase rate ids)``."""
    using_sales_tax: bool


CLASSIFICATION: dict[str, str] = {
    "Bank": "Asset",
    "Accounts Receivable": "Asset",
    "Other Current Asset": "Asset",
    "Fixed Asset": "Asset",
    "Other Asset": "Asset",
    "Accounts Payable": "Liability",
    "Credit Card": "Liability",
    "Other Current Liability": "Liability",
    "Long Term Liability": "Liability",
    "Equity": "Equity",
    "Income": "Revenue",
    "Other Income": "Revenue",
    "Cost of Goods Sold": "Expense",
    "Expense": "Expense",
    "Other Expense": "Expense",
}
"""An account's ``Classification`` by its ``AccountType`` (as every account capture shows)."""

_COMMON_ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
    ("Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
    ("Inventory Asset", "Other Current Asset", "Inventory"),
    ("Uncategorized Asset", "Other Current Asset", "OtherCurrentAssets"),
    ("Prepaid Expenses", "Other Current Asset", "PrepaidExpenses"),
    ("Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable"),
    ("Opening Balance Equity", "Equity", "OpeningBalanceEquity"),
    ("Owner's Investment", "Equity", "OwnersEquity"),
    ("Owner's Pay & Personal Expenses", "Equity", "PersonalExpense"),
    ("Retained Earnings", "Equity", "RetainedEarnings"),
    ("Sales", "Income", "SalesOfProductIncome"),
    ("Sales of Product Income", "Income", "SalesOfProductIncome"),
    ("Services", "Income", "ServiceFeeIncome"),
    ("Billable Expense Income", "Income", "ServiceFeeIncome"),
    ("Uncategorized Income", "Income", "ServiceFeeIncome"),
    ("Unapplied Cash Payment Income", "Income", "UnappliedCashPaymentIncome"),
    ("Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
    ("Advertising & Marketing", "Expense", "AdvertisingPromotional"),
    ("Bank Charges & Fees", "Expense", "BankCharges"),
    ("Car & Truck", "Expense", "Auto"),
    ("Contractors", "Expense", "CostOfLabor"),
    ("Insurance", "Expense", "Insurance"),
    ("Interest Paid", "Expense", "InterestPaid"),
    ("Job Supplies", "Expense", "SuppliesMaterials"),
    ("Legal & Professional Services", "Expense", "LegalProfessionalFees"),
    ("Meals & Entertainment", "Expense", "EntertainmentMeals"),
    ("Office Supplies & Software", "Expense", "OfficeGeneralAdministrativeExpenses"),
    ("Other Business Expenses", "Expense", "OtherMiscellaneousServiceCost"),
    ("Purchases", "Expense", "SuppliesMaterials"),
    ("Reimbursable Expenses", "Expense", "OtherMiscellaneousServiceCost"),
    ("Rent & Lease", "Expense", "RentOrLeaseOfBuildings"),
    ("Repairs & Maintenance", "Expense", "RepairMaintenance"),
    ("Taxes & Licenses", "Expense", "TaxesPaid"),
    ("Travel", "Expense", "Travel"),
    ("Uncategorized Expense", "Expense", "OtherMiscellaneousServiceCost"),
    ("Unapplied Cash Bill Payment Expense", "Expense", "UnappliedCashBillPaymentExpense"),
    ("Utilities", "Expense", "Utilities"),
)
"""The accounts a new company of either country has."""

US = Country(
    code="US",
    name="United States",
    currency=("USD", "United States Dollar"),
    time_zone="America/Los_Angeles",
    address={
        "Line1": "2500 Garcia Ave",
        "City": "Mountain View",
        "CountrySubDivisionCode": "CA",
        "PostalCode": "94043",
        "Country": "US",
    },
    phone="(650) 944-4444",
    accounts=(
        *_COMMON_ACCOUNTS,
        ("Payroll Clearing", "Other Current Liability", "PayrollClearing"),
        ("Payroll Liabilities", "Other Current Liability", "PayrollTaxPayable"),
        ("Sales Tax Payable", "Other Current Liability", "SalesTaxPayable"),
        ("Payroll Expenses", "Expense", "PayrollExpenses"),
    ),
    # A US company's sales tax is off until it is set up: no agencies or rates, only the two
    # pseudo codes every US transaction line refers to (TaxCodeRef TAX / NON in the captures).
    tax_agencies=(),
    tax_rates=(),
    tax_codes=(
        ("TAX", "TAX", "TAX", True, (), ()),
        ("NON", "NON", "NON", False, (), ()),
    ),
    using_sales_tax=False,
)

CA = Country(
    code="CA",
    name="Canada",
    currency=("CAD", "Canadian Dollar"),
    time_zone="America/Toronto",
    address={
        "Line1": "100 King St W",
        "City": "Toronto",
        "CountrySubDivisionCode": "ON",
        "PostalCode": "M5X 1A9",
        "Country": "CA",
    },
    phone="(416) 555-0100",
    accounts=(
        *_COMMON_ACCOUNTS,
        ("GST/HST Payable", "Other Current Liability", "GlobalTaxPayable"),
        ("GST/HST Suspense", "Other Current Liability", "GlobalTaxSuspense"),
        ("Payroll Liabilities", "Other Current Liability", "PayrollTaxPayable"),
        ("Payroll Expenses", "Expense", "PayrollExpenses"),
    ),
    tax_agencies=("Canada Revenue Agency",),
    # (Id, Name, RateValue, agency id): a sales and a purchase rate per tax, as QBO keeps them.
    tax_rates=(
        ("1", "GST (Sales)", 5, "1"),
        ("2", "GST (Purchases)", 5, "1"),
        ("3", "HST ON (Sales)", 13, "1"),
        ("4", "HST ON (Purchases)", 13, "1"),
        ("5", "Zero-rated (Sales)", 0, "1"),
        ("6", "Zero-rated (Purchases)", 0, "1"),
        ("7", "Exempt (Sales)", 0, "1"),
        ("8", "Exempt (Purchases)", 0, "1"),
    ),
    # Ids 3 to 6 are the system codes every Canadian company starts with (Out of Scope, Exempt,
    # Zero-rated, GST), then the province's: HST ON for an Ontario company.
    tax_codes=(
        ("3", "Out of Scope", "Out of Scope", False, (), ()),
        ("4", "Exempt", "Exempt", False, ("7",), ("8",)),
        ("5", "Zero-rated", "Zero-rated", True, ("5",), ("6",)),
        ("6", "GST", "GST", True, ("1",), ("2",)),
        ("7", "HST ON", "HST ON", True, ("3",), ("4",)),
    ),
    using_sales_tax=True,
)

COUNTRIES: dict[str, Country] = {"US": US, "CA": CA}
"""The countries a new sandbox company can be created in, by ISO code."""

TERMS: tuple[tuple[str, int], ...] = (
    ("Due on receipt", 0),
    ("Net 15", 15),
    ("Net 30", 30),
    ("Net 60", 60),
)
"""``(Name, DueDays)``: the terms of every new QBO company (Term 4 is "Net 60" in the capture)."""

PAYMENT_METHODS: tuple[tuple[str, str], ...] = (
    ("Cash", "NON_CREDIT_CARD"),
    ("Check", "NON_CREDIT_CARD"),
    ("Visa", "CREDIT_CARD"),
    ("MasterCard", "CREDIT_CARD"),
    ("Discover", "CREDIT_CARD"),
    ("American Express", "CREDIT_CARD"),
    ("Diners Club", "CREDIT_CARD"),
)
"""``(Name, Type)``: the payment methods of every new company (7 is "Diners Club")."""

ITEMS: tuple[tuple[str, str], ...] = (("Services", "Services"), ("Hours", "Services"))
"""``(Name, income account name)``: the service items QBO creates with a company."""

DEFAULT_TERM = "Net 30"
"""The sales forms' default terms (``Preferences.SalesFormsPrefs.DefaultTerms``)."""
