"""A brand-new QBO company: what a realm holds the day it is created, and nothing else.

QBO does not start a company empty. :func:`create_new_company` adds a realm holding what QBO
creates with it, for the United States or Canada (:mod:`new_company_defaults`): CompanyInfo and
Preferences (home currency, multicurrency on or off), the default chart of accounts, terms,
payment methods, tax codes (US: the pseudo codes ``TAX`` and ``NON``; Canada: GST/HST codes with
their rates and the Canada Revenue Agency), the "Services" and "Hours" items, and with
multicurrency on the home currency as CompanyCurrency 1 (in the capture a company's first added
currency, minutes after its creation, is CompanyCurrency 2). No transactions, customers, vendors
or employees. Every record is a complete QBO payload stamped with the realm's clock, so the API
serves it, queries it and checks names against it like any other record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qbo_pipeline.sandbox.clock import qbo_time
from qbo_pipeline.sandbox.new_company_defaults import (
    CLASSIFICATION,
    COUNTRIES,
    DEFAULT_TERM,
    ITEMS,
    PAYMENT_METHODS,
    TERMS,
    Country,
)
from qbo_pipeline.sandbox.store import SandboxStore, numeric_id

__all__ = ["FIRST_NEW_REALM_ID", "NewCompany", "create_new_company", "next_realm_id"]

FIRST_NEW_REALM_ID = 9341460000000001
"""The first realm id given to a new company (generated companies count from 9341450000000001)."""


@dataclass(frozen=True)
class NewCompany:
    """What :func:`create_new_company` made."""

    realm_id: str
    company_name: str
    country: str
    home_currency: str
    multicurrency: bool
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (the admin endpoint's and the CLI's answer)."""
        return {
            "realmId": self.realm_id,
            "companyName": self.company_name,
            "country": self.country,
            "homeCurrency": self.home_currency,
            "multicurrency": self.multicurrency,
            "counts": dict(self.counts),
        }


def next_realm_id(store: SandboxStore) -> str:
    """A realm id no company of the store has, from :data:`FIRST_NEW_REALM_ID` up."""
    taken = {int(r) for r in store.realm_ids() if r.isdigit()}
    candidate = FIRST_NEW_REALM_ID
    while candidate in taken:
        candidate += 1
    return str(candidate)


def create_new_company(
    store: SandboxStore,
    *,
    country: str = "US",
    multicurrency: bool = False,
    realm_id: str | None = None,
    company_name: str | None = None,
    clock_start: datetime | None = None,
) -> NewCompany:
    """Create a realm holding a company as QBO creates it: defaults only, no transactions.

    Args:
        store: The sandbox store.
        country: ``"US"`` or ``"CA"`` (case-insensitive).
        multicurrency: Whether multicurrency is on (``Preferences.CurrencyPrefs``).
        realm_id: The new realm's numeric id (default: :func:`next_realm_id`).
        company_name: The company's name (default: "New Company <country>").
        clock_start: What the realm's clock reads now (None: the host's time, and it follows it).

    Returns:
        The new realm's id, its settings and how many records of each entity it holds.

    Raises:
        ValueError: If the country is not one of the modelled ones, the realm id is not numeric
            or already exists, or the name is blank.
    """
    code = str(country).strip().upper()
    spec = COUNTRIES.get(code)
    if spec is None:
        raise ValueError(
            f"country {country!r} is not one a new sandbox company can be created in "
            f"(one of {', '.join(COUNTRIES)})"
        )
    if not isinstance(multicurrency, bool):
        raise ValueError(f"multicurrency must be true or false, not {multicurrency!r}")
    realm = str(realm_id).strip() if realm_id is not None else next_realm_id(store)
    numeric_id(realm, entity="realm")
    name = f"New Company {code}" if company_name is None else str(company_name).strip()
    if not name:
        raise ValueError("the company name must not be blank")
    if store.has_realm(realm):
        raise ValueError(f"sandbox realm {realm!r} already exists")
    store.create_realm(realm, name, clock_start=clock_start)
    created = qbo_time(store.now(realm))
    counts: dict[str, int] = {}
    with store.transaction():
        for entity, records in _payloads(spec, name, multicurrency, created).items():
            if records:
                counts[entity] = store.bulk_load(realm, entity, records)
    return NewCompany(realm, name, code, spec.currency[0], multicurrency, counts)


def _head(record_id: str, created: str) -> dict[str, Any]:
    return {
        "domain": "QBO",
        "sparse": False,
        "Id": record_id,
        "SyncToken": "0",
        "MetaData": {"CreateTime": created, "LastUpdatedTime": created},
    }


def _payloads(
    spec: Country, name: str, multicurrency: bool, created: str
) -> dict[str, list[dict[str, Any]]]:
    accounts = _accounts(spec, created)
    by_name = {a["Name"]: a["Id"] for a in accounts}
    return {
        "CompanyCurrency": _currencies(spec, created) if multicurrency else [],
        "Term": [
            {
                **_head(str(i), created),
                "Name": term,
                "DiscountPercent": 0,
                "DiscountDays": 0,
                "Type": "STANDARD",
                "Active": True,
                "DueDays": days,
            }
            for i, (term, days) in enumerate(TERMS, start=1)
        ],
        "PaymentMethod": [
            {**_head(str(i), created), "Name": method, "Active": True, "Type": kind}
            for i, (method, kind) in enumerate(PAYMENT_METHODS, start=1)
        ],
        "TaxAgency": [
            {
                **_head(str(i), created),
                "DisplayName": agency,
                "TaxTrackedOnSales": True,
                "TaxTrackedOnPurchases": spec.code != "US",
            }
            for i, agency in enumerate(spec.tax_agencies, start=1)
        ],
        "TaxRate": [
            {
                "RateValue": rate,
                "AgencyRef": {"value": agency},
                **_head(rate_id, created),
                "Name": rate_name,
                "SpecialTaxType": "NONE" if rate else "ZERO_RATE",
                "DisplayType": "ReadOnly",
                "Active": True,
                "Description": rate_name,
            }
            for rate_id, rate_name, rate, agency in spec.tax_rates
        ],
        "TaxCode": _tax_codes(spec, created),
        "Account": accounts,
        "Item": [
            {
                "Name": item,
                "Active": True,
                "FullyQualifiedName": item,
                "Taxable": False,
                "UnitPrice": 0,
                "Type": "Service",
                "IncomeAccountRef": {"value": by_name[income], "name": income},
                "PurchaseCost": 0,
                "TrackQtyOnHand": False,
                **_head(str(i), created),
            }
            for i, (item, income) in enumerate(ITEMS, start=1)
        ],
        "CompanyInfo": [_company_info(spec, name, created)],
        "Preferences": [_preferences(spec, name, multicurrency, by_name, created)],
    }


def _accounts(spec: Country, created: str) -> list[dict[str, Any]]:
    code, currency_name = spec.currency
    return [
        {
            "Name": name,
            "SubAccount": False,
            "FullyQualifiedName": name,
            "Active": True,
            "Classification": CLASSIFICATION[account_type],
            "AccountType": account_type,
            "AccountSubType": sub_type,
            "CurrentBalance": 0,
            "CurrentBalanceWithSubAccounts": 0,
            "CurrencyRef": {"value": code, "name": currency_name},
            **_head(str(i), created),
        }
        for i, (name, account_type, sub_type) in enumerate(spec.accounts, start=1)
    ]


def _currencies(spec: Country, created: str) -> list[dict[str, Any]]:
    code, currency_name = spec.currency
    return [{**_head("1", created), "Code": code, "Name": currency_name, "Active": True}]


def _tax_codes(spec: Country, created: str) -> list[dict[str, Any]]:
    rate_names = {r[0]: r[1] for r in spec.tax_rates}

    def details(rate_ids: tuple[str, ...]) -> dict[str, Any]:
        return {
            "TaxRateDetail": [
                {
                    "TaxRateRef": {"value": rate_id, "name": rate_names[rate_id]},
                    "TaxTypeApplicable": "TaxOnAmount",
                    "TaxOrder": order,
                }
                for order, rate_id in enumerate(rate_ids)
            ]
        }

    codes: list[dict[str, Any]] = []
    for code_id, name, description, taxable, sales, purchases in spec.tax_codes:
        if not code_id.isdigit():
            # TAX and NON: a US company's pseudo codes, with text ids and no rates.
            codes.append(
                {
                    **_head(code_id, created),
                    "Name": name,
                    "Description": description,
                    "Taxable": taxable,
                    "TaxGroup": False,
                    "Active": True,
                }
            )
            continue
        codes.append(
            {
                "Name": name,
                "Description": description,
                "Active": True,
                "Hidden": False,
                "Taxable": taxable,
                "TaxGroup": bool(sales or purchases),
                "SalesTaxRateList": details(sales),
                "PurchaseTaxRateList": details(purchases),
                "TaxCodeConfigType": "SYSTEM_GENERATED",
                **_head(code_id, created),
            }
        )
    return codes


def _company_info(spec: Country, name: str, created: str) -> dict[str, Any]:
    address = {"Id": "1", **spec.address}
    return {
        **_head("1", created),
        "CompanyName": name,
        "LegalName": name,
        "CompanyAddr": dict(address),
        "CustomerCommunicationAddr": dict(address),
        "LegalAddr": dict(address),
        "PrimaryPhone": {"FreeFormNumber": spec.phone},
        "CompanyStartDate": created[:10],
        "FiscalYearStartMonth": "January",
        "Country": spec.code,
        "Email": {"Address": "noreply@quickbooks.com"},
        "WebAddr": {},
        "SupportedLanguages": "en",
        "DefaultTimeZone": spec.time_zone,
        "NameValue": [
            {"Name": "NeoEnabled", "Value": "true"},
            {"Name": "SubscriptionStatus", "Value": "TRIAL"},
            {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"},
            {"Name": "PayrollFeature", "Value": "false"},
            {"Name": "AccountantFeature", "Value": "false"},
        ],
    }


def _preferences(
    spec: Country, name: str, multicurrency: bool, accounts: dict[str, str], created: str
) -> dict[str, Any]:
    def message(kind: str, text: str) -> dict[str, str]:
        return {"Subject": f"{kind} from {name}", "Message": f"{text}\n\nSincerely,\n{name}"}

    default_term = str(next(i for i, (t, _) in enumerate(TERMS, 1) if t == DEFAULT_TERM))
    return {
        "AccountingInfoPrefs": {
            "TrackDepartments": False,
            "ClassTrackingPerTxn": False,
            "ClassTrackingPerTxnLine": False,
            "CustomerTerminology": "Customers",
        },
        "ProductAndServicesPrefs": {
            "ForSales": True,
            "ForPurchase": True,
            "QuantityWithPriceAndRate": True,
            "QuantityOnHand": True,
        },
        "SalesFormsPrefs": {
            "CustomTxnNumbers": False,
            "AllowDeposit": False,
            "AllowDiscount": False,
            "AllowEstimates": True,
            "AllowServiceDate": False,
            "AllowShipping": False,
            "DefaultTerms": {"value": default_term},
        },
        "EmailMessagesPrefs": {
            "InvoiceMessage": message("Invoice", "Your invoice is attached."),
            "EstimateMessage": message("Estimate", "Please review the estimate below."),
        },
        "VendorAndPurchasesPrefs": {"TrackingByCustomer": False, "BillableExpenseTracking": False},
        "TimeTrackingPrefs": {
            "UseServices": True,
            "BillCustomers": False,
            "ShowBillRateToAll": False,
            "WorkWeekStartDate": "Monday",
            "MarkTimeEntriesBillable": False,
        },
        "TaxPrefs": {"UsingSalesTax": spec.using_sales_tax},
        "CurrencyPrefs": {
            "MultiCurrencyEnabled": multicurrency,
            "HomeCurrency": {"value": spec.currency[0]},
        },
        "ReportPrefs": {"ReportBasis": "Accrual", "CalcAgingReportFromTxnDate": False},
        "OtherPrefs": {
            "NameValue": [
                {"Name": "UncategorizedAssetAccountId", "Value": accounts["Uncategorized Asset"]},
                {
                    "Name": "UncategorizedIncomeAccountId",
                    "Value": accounts["Uncategorized Income"],
                },
                {
                    "Name": "UncategorizedExpenseAccountId",
                    "Value": accounts["Uncategorized Expense"],
                },
            ]
        },
        **_head("1", created),
    }
