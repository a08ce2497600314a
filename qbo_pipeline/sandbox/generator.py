"""A generated company modelled on the real sample company, deterministic from a seed.

``generate_company`` fills a realm of a :class:`SandboxStore` with Craig's Design and Landscaping
Services: the real names, ids and chart of accounts of :mod:`sample_company`, every entity of the
catalogue, some inactive records, and transactions whose books balance (invoices that add up,
payments linked to the invoices they pay, deposits that empty Undeposited Funds, bill payments
linked to bills, balanced journal entries). Name-list balances (customer and vendor ``Balance``,
account ``CurrentBalance``, item ``QtyOnHand``) are the sums of the generated transactions,
computed with the posting rules of :mod:`reports`.

The history ends at the realm's clock (its "now", the host's time for a new realm): the books run
up to the day before it. The same seed and the same last day give byte-identical payloads: every
value, MetaData time included, comes from the seed and the first day of the books, so a test pins
the anchor (or the start) to get the same company every day. ``transactions=N`` grows the
company: more customers, vendors and employees in proportion, more items with the square root,
transactions spread over three years. Transactions are generated and loaded a chunk at a time,
each chunk self-contained (its payments pay its own invoices), so memory stays bounded at any size.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.sandbox import openid, tax_compute
from qbo_pipeline.sandbox import sample_company as sample
from qbo_pipeline.sandbox.clock import COMPANY_TZ, qbo_time
from qbo_pipeline.sandbox.reports import Chart, postings
from qbo_pipeline.sandbox.store import SandboxStore

CHUNK_TRANSACTIONS = 5000
"""Transactions generated and loaded together; bounds memory at any scale."""

ATTACHMENT_ID_BASE = 5000000000000100000
"""Attachable ids look like the captures' (5000000000000503624)."""

_USD = {"value": "USD", "name": "United States Dollar"}
_TXN_EX = {
    "any": [
        {
            "name": "{http://schema.intuit.com/finance/v3}NameValue",
            "declaredType": "com.intuit.schema.finance.v3.NameValue",
            "scope": "javax.xml.bind.JAXBElement$GlobalScope",
            "value": {"Name": "TxnType", "Value": "54"},
            "nil": False,
            "globalScope": True,
            "typeSubstituted": False,
        }
    ]
}

# Accounts the generated transactions use (ids of the sample company's chart).
_AR, _AP, _UNDEPOSITED, _CHECKING, _SAVINGS = "84", "33", "4", "35", "36"
_MASTERCARD, _VISA, _OPENING_EQUITY, _INVENTORY, _COGS = "41", "42", "34", "81", "80"
_TRUCK_COST, _DEPRECIATION_ACC, _DEPRECIATION_EXP = "38", "39", "40"
_LOAN, _NOTES, _DISCOUNTS, _BILLABLE_INCOME, _INTEREST = "43", "44", "86", "85", "25"
_SALES_TAX_CODE, _SALES_TAX_RATE, _TAX_PERCENT = "2", "3", 8
_EXPENSE_ACCOUNTS = ("7", "8", "13", "15", "17", "20", "22", "24", "29", "56", "64", "66", "67")
_BILL_ACCOUNTS = ("11", "12", "17", "24", "62", "66", "68", "69", "76", "77")

_FIRST_NAMES = (
    "Avery", "Blake", "Carmen", "Dana", "Elliot", "Farah", "Gina", "Hector", "Ines", "Jonah",
    "Keiko", "Luis", "Maya", "Nolan", "Olga", "Priya", "Quinn", "Rosa", "Sven", "Tara",
)  # fmt: skip
_LAST_NAMES = (
    "Alvarez", "Brennan", "Castillo", "Dorsey", "Ekwueme", "Fischer", "Gallagher", "Huang",
    "Iverson", "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov",
)  # fmt: skip
_BUSINESS_WORDS = (
    "Garden", "Harbor", "Oak", "Summit", "Coastal", "Valley", "Cedar", "Sunrise", "Maple", "Bay",
)  # fmt: skip
_BUSINESS_KINDS = (
    "Cafe", "Dental", "Books", "Bakery", "Realty", "Fitness", "Florist", "Motors", "Supply",
)  # fmt: skip
_CITIES = (
    ("Middlefield", "CA", "94303"), ("Palo Alto", "CA", "94303"), ("Menlo Park", "CA", "94304"),
    ("Bayshore", "CA", "94326"), ("Half Moon Bay", "CA", "94213"), ("Tucson", "AZ", "85719"),
)  # fmt: skip
_STREETS = ("Main St.", "Elm St.", "Ocean Dr.", "Willow Rd.", "Cedar St.", "First St.")
_SERVICE_PRICES = (2500, 3500, 4000, 5000, 7500, 10000, 12000)


@dataclass(frozen=True)
class GenerationSummary:
    """What ``generate_company`` created."""

    realm_id: str
    seed: int
    company_name: str
    start: date
    clock: datetime
    counts: dict[str, int]

    @property
    def transactions(self) -> int:
        """How many transaction records the company holds."""
        kinds = {e.name for e in entities.of_kind(entities.Kind.TRANSACTION)}
        return sum(n for name, n in self.counts.items() if name in kinds)


# --- small payload helpers --------------------------------------------------------------------


def money(amount_cents: int) -> int | float:
    """Cents as a QBO JSON number: ``275`` for whole amounts, ``103.55`` otherwise."""
    if amount_cents % 100 == 0:
        return amount_cents // 100
    return amount_cents / 100


def ref(value: str, name: str | None = None) -> dict[str, str]:
    """A QBO reference object."""
    return {"value": value, "name": name} if name is not None else {"value": value}


def _meta(created: str, updated: str | None = None) -> dict[str, str]:
    return {"CreateTime": created, "LastUpdatedTime": updated or created}


def _head(record_id: str, created: str, sync: int = 0, updated: str | None = None) -> dict:
    return {
        "domain": "QBO",
        "sparse": False,
        "Id": record_id,
        "SyncToken": str(sync),
        "MetaData": _meta(created, updated),
    }


def _address(addr: sample.Address | None) -> dict[str, str] | None:
    if addr is None:
        return None
    keys = ("Id", "Line1", "City", "CountrySubDivisionCode", "PostalCode", "Lat", "Long")
    return {k: v for k, v in zip(keys, addr, strict=True) if v is not None}


def allocate(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Split ``total`` over the keys in proportion to ``weights``, at least 1 each.

    Largest remainders break ties in key order, so the split is deterministic.

    Raises:
        ValueError: If ``total`` is smaller than the number of keys.
    """
    if total < len(weights):
        raise ValueError(
            f"transactions={total} is too small: at least {len(weights)} are needed so that "
            "every transaction entity is present"
        )
    spare = total - len(weights)
    weight_sum = sum(weights.values())
    shares = {k: spare * w / weight_sum for k, w in weights.items()}
    out = {k: 1 + int(share) for k, share in shares.items()}
    left = total - sum(out.values())
    for key in sorted(weights, key=lambda k: (-(shares[k] - int(shares[k])), k))[:left]:
        out[key] += 1
    return out


# --- the company's lists ----------------------------------------------------------------------


@dataclass
class _Party:
    """A customer, vendor or employee profile kept in memory while transactions are made."""

    id: str
    name: str
    spec: Any
    active: bool = True
    balance: int = 0


@dataclass
class _Item:
    id: str
    spec: sample.ItemSpec
    price: int
    cost: int
    qty: float
    active: bool = True


@dataclass
class _Company:
    """Everything generated so far that later records refer to."""

    realm_id: str
    start: date
    days: int
    customers: list[_Party] = field(default_factory=list)
    vendors: list[_Party] = field(default_factory=list)
    employees: list[_Party] = field(default_factory=list)
    items: list[_Item] = field(default_factory=list)
    chart: Chart = field(default_factory=Chart)
    account_balances: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    next_txn_id: int = 1
    next_doc: int = 1001
    tax_collected: int = 0

    def txn_id(self) -> str:
        value = self.next_txn_id
        self.next_txn_id += 1
        return str(value)

    def doc_number(self) -> str:
        value = self.next_doc
        self.next_doc += 1
        return str(value)


def _name_time(start: date, offset_minutes: int) -> str:
    when = datetime.combine(start - timedelta(days=60), time(9, 0), COMPANY_TZ)
    return qbo_time(when + timedelta(minutes=offset_minutes))


def _scaled(base: int, factor: float) -> int:
    return max(base, round(base * factor))


def _extra_party_name(
    rng: random.Random, taken: set[str], suffixes: dict[str, int], business: bool
) -> str:
    """A new unique display name: a plausible base name, numbered after its first use."""
    if business:
        name = f"{rng.choice(_BUSINESS_WORDS)} {rng.choice(_BUSINESS_KINDS)}"
    else:
        name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
    candidate = name
    while candidate.casefold() in taken:
        suffixes[name] = suffixes.get(name, 1) + 1
        candidate = f"{name} {suffixes[name]}"
    taken.add(candidate.casefold())
    return candidate


def _extra_spec(
    rng: random.Random, party_id: str, name: str, business: bool, address_id: int
) -> sample.PartySpec:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    city, state, postal = rng.choice(_CITIES)
    street = f"{rng.randrange(1, 9999)} {rng.choice(_STREETS)}"
    slug = "".join(ch for ch in name.lower() if ch.isalnum())
    return sample.PartySpec(
        party_id,
        name,
        first,
        last,
        name if business else None,
        f"{slug}@example.com",
        f"(650) 555-{rng.randrange(0, 10000):04d}",
        (str(address_id), street, city, state, postal, None, None),
        taxable=rng.random() < 0.3,
    )


def _build_lists(company: _Company, rng: random.Random, factor: float) -> None:
    """The customers, vendors, employees and items (profiles; payloads come at the end)."""
    taken = {p.display_name.casefold() for p in (*sample.CUSTOMERS, *sample.VENDORS)}
    taken |= {f"{e.given_name} {e.family_name}".casefold() for e in sample.EMPLOYEES}
    company.customers = [_Party(s.id, s.display_name, s) for s in sample.CUSTOMERS]
    company.vendors = [_Party(s.id, s.display_name, s, active=s.active) for s in sample.VENDORS]
    company.employees = [
        _Party(e.id, f"{e.given_name} {e.family_name}", e, active=e.active)
        for e in sample.EMPLOYEES
    ]
    suffixes: dict[str, int] = {}
    next_party = 58
    address_id = 200
    for kind, base in (("Customer", sample.CUSTOMERS), ("Vendor", sample.VENDORS)):
        target = company.customers if kind == "Customer" else company.vendors
        for _ in range(_scaled(len(base), factor) - len(base)):
            business = rng.random() < 0.6 or kind == "Vendor"
            name = _extra_party_name(rng, taken, suffixes, business)
            spec = _extra_spec(rng, str(next_party), name, business, address_id)
            target.append(_Party(spec.id, name, spec, active=rng.random() >= 0.03))
            next_party += 1
            address_id += 1
    for _ in range(_scaled(len(sample.EMPLOYEES), factor) - len(sample.EMPLOYEES)):
        name = _extra_party_name(rng, taken, suffixes, business=False)
        given, family = name.split(" ", 1)
        hired = f"{2015 + rng.randrange(0, 9)}-{rng.randrange(1, 13):02d}-01"
        employee = sample.EmployeeSpec(str(next_party), given, family, None, None, hired, True)
        company.employees.append(_Party(employee.id, name, employee, active=rng.random() >= 0.05))
        next_party += 1
    for item in sample.ITEMS:
        price = round(float(item.unit_price or 0) * 100)
        cost = round(float(item.purchase_cost or 0) * 100)
        company.items.append(_Item(item.id, item, price, cost, float(item.qty or 0)))
    extra_items = _scaled(len(sample.ITEMS), math.sqrt(factor)) - len(sample.ITEMS)
    for n in range(extra_items):
        model = sample.ITEMS[n % len(sample.ITEMS)]
        item_id = str(len(sample.ITEMS) + n + 1)
        item = model._replace(id=item_id, name=f"{model.name} {n // len(sample.ITEMS) + 2}")
        price = round(float(item.unit_price or 0) * 100)
        cost = round(float(item.purchase_cost or 0) * 100)
        company.items.append(_Item(item_id, item, price, cost, float(item.qty or 0)))
    company.chart = Chart.from_records(
        _account_payloads(company, "2024-01-01T00:00:00-08:00", {}),
        (_item_payload(i, "2024-01-01T00:00:00-08:00") for i in company.items),
        _tax_rate_payloads("2024-01-01T00:00:00-08:00"),
        _tax_agency_payloads("2024-01-01T00:00:00-08:00"),
        _tax_code_payloads("2024-01-01T00:00:00-08:00"),
        default_tax_code=sample.DEFAULT_TAX_CODE,
    )


# --- name-list payloads ---------------------------------------------------------------------


def _account_names() -> dict[str, str]:
    by_id = {a.id: a for a in sample.ACCOUNTS}
    names: dict[str, str] = {}
    for account in sample.ACCOUNTS:
        parts = [account.name]
        parent = account.parent
        while parent:
            parts.append(by_id[parent].name)
            parent = by_id[parent].parent
        names[account.id] = ":".join(reversed(parts))
    return names


_FULL_NAMES = _account_names()
_ACCOUNT_BY_ID = {a.id: a for a in sample.ACCOUNTS}


def _acc(account_id: str) -> dict[str, str]:
    return ref(account_id, _FULL_NAMES[account_id])


def _account_payloads(
    company: _Company, created: str, balances: dict[str, int]
) -> Iterator[dict[str, Any]]:
    with_subs: dict[str, int] = defaultdict(int)
    for account in sample.ACCOUNTS:
        amount = balances.get(account.id, 0)
        node: str | None = account.id
        while node:
            with_subs[node] += amount
            node = _ACCOUNT_BY_ID[node].parent
    for account in sample.ACCOUNTS:
        suffix = "" if account.active else " (deleted)"
        record: dict[str, Any] = {"Name": account.name + suffix, "SubAccount": bool(account.parent)}
        if account.parent:
            record["ParentRef"] = ref(account.parent)
        balance_sheet = account.classification in ("Asset", "Liability", "Equity")
        record.update(
            {
                "FullyQualifiedName": _FULL_NAMES[account.id] + suffix,
                "Active": account.active,
                "Classification": account.classification,
                "AccountType": account.account_type,
                "AccountSubType": account.sub_type,
                "CurrentBalance": money(balances.get(account.id, 0)) if balance_sheet else 0,
                "CurrentBalanceWithSubAccounts": money(with_subs[account.id])
                if balance_sheet
                else 0,
                "CurrencyRef": dict(_USD),
                **_head(account.id, created, 0 if account.active else 1),
            }
        )
        yield record


def _item_payload(item: _Item, created: str) -> dict[str, Any]:
    spec = item.spec
    suffix = "" if item.active else " (deleted)"
    record: dict[str, Any] = {"Name": spec.name + suffix}
    if spec.description:
        record["Description"] = spec.description
    record.update(
        {
            "Active": item.active,
            "FullyQualifiedName": spec.name + suffix,
            "Taxable": spec.taxable,
            "UnitPrice": money(item.price),
            "Type": spec.type,
        }
    )
    if spec.income_account:
        record["IncomeAccountRef"] = _acc(spec.income_account)
    if spec.type == "Inventory":
        record["PurchaseDesc"] = spec.description
    record["PurchaseCost"] = money(item.cost)
    if spec.expense_account:
        record["ExpenseAccountRef"] = _acc(spec.expense_account)
    if spec.asset_account:
        record["AssetAccountRef"] = _acc(spec.asset_account)
    record["TrackQtyOnHand"] = spec.type == "Inventory"
    if spec.type == "Inventory":
        qty = round(item.qty, 2)
        record["QtyOnHand"] = int(qty) if qty == int(qty) else qty
        record["InvStartDate"] = created[:10]
    record.update(_head(item.id, created, 0 if item.active else 1))
    return record


def _tax_agency_payloads(created: str) -> Iterator[dict[str, Any]]:
    for agency in sample.TAX_AGENCIES:
        yield {
            **_head(agency.id, created),
            "DisplayName": agency.name,
            "TaxTrackedOnSales": True,
            "TaxTrackedOnPurchases": False,
        }


def _tax_rate_payloads(created: str) -> Iterator[dict[str, Any]]:
    for rate in sample.TAX_RATES:
        yield {
            "RateValue": rate.rate,
            "AgencyRef": ref(rate.agency),
            **_head(rate.id, created),
            "Name": rate.name,
            "SpecialTaxType": "NONE",
            "DisplayType": "ReadOnly",
            "Active": True,
            "Description": "Sales Tax",
        }


def _tax_code_payloads(created: str) -> Iterator[dict[str, Any]]:
    rate_names = {r.id: r.name for r in sample.TAX_RATES}
    for code in sample.TAX_CODES:
        if not code.id.isdigit():
            # TAX and NON: the pseudo codes of a US company, records with text ids and no rates.
            yield {
                **_head(code.id, created),
                "Name": code.name,
                "Description": code.description,
                "Taxable": code.taxable,
                "TaxGroup": False,
                "Active": True,
            }
            continue
        yield {
            **_head(code.id, created),
            "TaxGroup": len(code.rates) > 0,
            "Name": code.name,
            "Taxable": code.taxable,
            "PurchaseTaxRateList": {"TaxRateDetail": []},
            "Active": True,
            "Description": code.description,
            "SalesTaxRateList": {
                "TaxRateDetail": [
                    {
                        "TaxTypeApplicable": "TaxOnAmount",
                        "TaxRateRef": ref(rate, rate_names[rate]),
                        "TaxOrder": order,
                    }
                    for order, rate in enumerate(code.rates)
                ]
            },
        }


def _named_payloads(entity: str, specs: tuple[sample.NamedSpec, ...], created: str) -> Iterator:
    for spec in specs:
        suffix = "" if spec.active else " (deleted)"
        record: dict[str, Any] = {**_head(spec.id, created, 0 if spec.active else 1)}
        if entity == "Term":
            record.update(
                {
                    "Name": spec.name,
                    "DiscountPercent": 0,
                    "DiscountDays": 0,
                    "Type": "STANDARD",
                    "Active": spec.active,
                    "DueDays": spec.detail,
                }
            )
        elif entity == "PaymentMethod":
            record.update({"Name": spec.name, "Active": spec.active, "Type": spec.detail})
        elif entity == "CompanyCurrency":
            record.update({"Code": spec.name, "Name": spec.detail, "Active": spec.active})
        else:
            record.update(
                {
                    "Name": spec.name + suffix,
                    "Active": spec.active,
                    "FullyQualifiedName": spec.name + suffix,
                }
            )
            if entity == "Class":
                record["SubClass"] = False
            elif entity == "Department":
                record["SubDepartment"] = False
        yield record


def _balances_with_jobs(customers: Iterable[_Party]) -> dict[str, int]:
    """Each customer's balance with its sub-customers' (jobs'), as QBO's ``BalanceWithJobs``.

    One pass over the customers and their children (a scan of all customers per customer was
    quadratic: hours at the 1M company's 200k customers).
    """
    parties = list(customers)
    children: dict[str, list[_Party]] = defaultdict(list)
    for party in parties:
        if party.spec.parent:
            children[party.spec.parent].append(party)
    totals: dict[str, int] = {}

    def total(party: _Party) -> int:
        if party.id not in totals:
            totals[party.id] = party.balance + sum(total(job) for job in children[party.id])
        return totals[party.id]

    for party in parties:
        total(party)
    return totals


def _customer_payload(
    party: _Party, created: str, by_id: dict[str, _Party], with_jobs: dict[str, int]
) -> dict[str, Any]:
    spec: sample.PartySpec = party.spec
    suffix = "" if party.active else " (deleted)"
    addr = _address(spec.address)
    record: dict[str, Any] = {"Taxable": spec.taxable}
    if addr:
        record["BillAddr"] = addr
        record["ShipAddr"] = dict(addr)
    parent = by_id.get(spec.parent or "")
    record.update({"Job": parent is not None, "BillWithParent": False})
    if parent is not None:
        record["ParentRef"] = ref(parent.id)
        record["Level"] = 1
    record.update(
        {
            "Balance": money(party.balance),
            "BalanceWithJobs": money(with_jobs[party.id]),
            "CurrencyRef": dict(_USD),
            "PreferredDeliveryMethod": "Print",
            "IsProject": False,
        }
    )
    if spec.taxable:
        record["DefaultTaxCodeRef"] = ref(_SALES_TAX_CODE)
    record.update(_head(party.id, created, 0 if party.active else 1))
    if spec.given_name:
        record["GivenName"] = spec.given_name
    if spec.family_name:
        record["FamilyName"] = spec.family_name
    full = f"{parent.name}:{spec.display_name}" if parent else spec.display_name
    record["FullyQualifiedName"] = full + suffix
    if spec.company_name:
        record["CompanyName"] = spec.company_name
    record.update(
        {
            "DisplayName": spec.display_name + suffix,
            "PrintOnCheckName": spec.company_name or spec.display_name,
            "Active": party.active,
        }
    )
    if spec.phone:
        record["PrimaryPhone"] = {"FreeFormNumber": spec.phone}
    if spec.email:
        record["PrimaryEmailAddr"] = {"Address": spec.email}
    return record


def _vendor_payload(party: _Party, created: str) -> dict[str, Any]:
    spec: sample.PartySpec = party.spec
    suffix = "" if party.active else " (deleted)"
    record: dict[str, Any] = {}
    addr = _address(spec.address)
    if addr:
        record["BillAddr"] = addr
    if spec.term:
        record["TermRef"] = ref(spec.term)
    record.update({"Balance": money(party.balance), "Vendor1099": bool(spec.vendor_1099)})
    record["CurrencyRef"] = dict(_USD)
    record.update(_head(party.id, created, 0 if party.active else 1))
    names = (
        ("GivenName", spec.given_name),
        ("FamilyName", spec.family_name),
        ("CompanyName", spec.company_name),
    )
    record.update({key: value for key, value in names if value})
    record.update(
        {
            "DisplayName": spec.display_name + suffix,
            "PrintOnCheckName": spec.company_name or spec.display_name,
            "Active": party.active,
        }
    )
    if spec.phone:
        record["PrimaryPhone"] = {"FreeFormNumber": spec.phone}
    if spec.email:
        record["PrimaryEmailAddr"] = {"Address": spec.email}
    if spec.acct_num:
        record["AcctNum"] = spec.acct_num
    return record


def _employee_payload(party: _Party, created: str) -> dict[str, Any]:
    spec: sample.EmployeeSpec = party.spec
    suffix = "" if party.active else " (deleted)"
    record: dict[str, Any] = {"BillableTime": False}
    if spec.birth_date:
        record["BirthDate"] = spec.birth_date
    if spec.hired_date:
        record["HiredDate"] = spec.hired_date
    record.update(_head(party.id, created, 0 if party.active else 1))
    record.update(
        {
            "GivenName": spec.given_name,
            "FamilyName": spec.family_name,
            "DisplayName": party.name + suffix,
            "PrintOnCheckName": party.name,
            "Active": party.active,
        }
    )
    if spec.phone:
        record["PrimaryPhone"] = {"FreeFormNumber": spec.phone}
    return record


# --- transactions -----------------------------------------------------------------------------


class _Chunk:
    """One self-contained slice of transactions: its days, its records, its open documents."""

    def __init__(self, company: _Company, rng: random.Random, first_day: int, last_day: int):
        self.company = company
        self.rng = rng
        self.first_day = first_day
        self.last_day = last_day
        self.records: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.invoices: list[dict[str, Any]] = []
        self.estimates: list[dict[str, Any]] = []
        self.bills: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.undeposited: list[tuple[str, dict[str, Any]]] = []
        self.sellable = [i for i in company.items if i.active and i.spec.type != "Category"]
        self.inventory = [i for i in self.sellable if i.spec.type == "Inventory"]
        self.customers = [c for c in company.customers if c.active]
        self.vendors = [v for v in company.vendors if v.active]
        self.employees = [e for e in company.employees if e.active]
        self.customer_by_id = {c.id: c for c in company.customers}
        self.vendor_by_id = {v.id: v for v in company.vendors}

    def take(self, pool: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Remove and return a random document of an open pool (None when it is empty)."""
        if not pool:
            return None
        index = self.rng.randrange(len(pool))
        pool[index], pool[-1] = pool[-1], pool[index]
        return pool.pop()

    def move_stock(self, lines: list[dict[str, Any]], sign: int) -> None:
        """Change inventory quantities by the lines' quantities (``sign`` -1 sells)."""
        for line in lines:
            detail = line.get("SalesItemLineDetail") or line.get("ItemBasedExpenseLineDetail")
            if detail:
                item = self._item(detail["ItemRef"]["value"])
                if item.spec.type == "Inventory":
                    item.qty += sign * detail["Qty"]

    # time and dates ---------------------------------------------------------------------------

    def day(self, not_before: str | None = None) -> str:
        low = self.first_day
        if not_before:
            low = max(low, (date.fromisoformat(not_before) - self.company.start).days)
        high = max(low, self.last_day)
        offset = self.rng.randint(low, min(high, self.company.days - 1))
        return (self.company.start + timedelta(days=offset)).isoformat()

    def later(self, txn_date: str, max_days: int) -> str:
        limit = self.company.start + timedelta(days=self.company.days - 1)
        when = date.fromisoformat(txn_date) + timedelta(days=self.rng.randint(0, max_days))
        return min(when, limit).isoformat()

    def stamp(self, txn_date: str) -> str:
        minutes = self.rng.randint(8 * 60, 18 * 60)
        when = datetime.combine(date.fromisoformat(txn_date), time(0, 0), COMPANY_TZ)
        return qbo_time(when + timedelta(minutes=minutes, seconds=self.rng.randint(0, 59)))

    # lines --------------------------------------------------------------------------------------

    def sales_lines(self, taxable_party: bool) -> tuple[list[dict[str, Any]], int, int]:
        """Item lines plus the subtotal line; returns (lines, subtotal, taxable amount)."""
        lines: list[dict[str, Any]] = []
        subtotal = taxable = 0
        for n in range(1, self.rng.randint(1, 3) + 1):
            item = self.rng.choice(self.sellable)
            price = item.price or self.rng.choice(_SERVICE_PRICES)
            qty = self.rng.randint(1, 8)
            amount = price * qty
            taxed = taxable_party and item.spec.taxable
            detail: dict[str, Any] = {
                "ItemRef": ref(item.id, item.spec.name),
                "UnitPrice": money(price),
                "Qty": qty,
            }
            if item.spec.income_account:
                detail["ItemAccountRef"] = _acc(item.spec.income_account)
            detail["TaxCodeRef"] = ref("TAX" if taxed else "NON")
            line: dict[str, Any] = {"Id": str(n), "LineNum": n}
            if item.spec.description:
                line["Description"] = item.spec.description
            line.update(
                {
                    "Amount": money(amount),
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": detail,
                    "CustomExtensions": [],
                }
            )
            lines.append(line)
            subtotal += amount
            taxable += amount if taxed else 0
        lines.append(
            {
                "Amount": money(subtotal),
                "DetailType": "SubTotalLineDetail",
                "SubTotalLineDetail": {},
            }
        )
        return lines, subtotal, taxable

    @staticmethod
    def tax_detail(taxable: int) -> tuple[dict[str, Any], int]:
        if not taxable:
            return {"TotalTax": 0}, 0
        # QBO's rounding (tax_compute): a cent half up; the sandbox's API computes the same.
        tax = int(tax_compute.tax_amount(Decimal(taxable) / 100, Decimal(_TAX_PERCENT)) * 100)
        return {
            "TxnTaxCodeRef": ref(_SALES_TAX_CODE),
            "TotalTax": money(tax),
            "TaxLine": [
                {
                    "Amount": money(tax),
                    "DetailType": "TaxLineDetail",
                    "TaxLineDetail": {
                        "TaxRateRef": ref(_SALES_TAX_RATE),
                        "PercentBased": True,
                        "TaxPercent": _TAX_PERCENT,
                        "NetAmountTaxable": money(taxable),
                    },
                }
            ],
        }, tax

    def expense_line(self, n: int, accounts: tuple[str, ...]) -> tuple[dict[str, Any], int]:
        account = self.rng.choice(accounts)
        amount = self.rng.randint(500, 90000)
        return {
            "Id": str(n),
            "LineNum": n,
            "Description": _ACCOUNT_BY_ID[account].name,
            "Amount": money(amount),
            "DetailType": "AccountBasedExpenseLineDetail",
            "AccountBasedExpenseLineDetail": {
                "AccountRef": _acc(account),
                "BillableStatus": "NotBillable",
                "TaxCodeRef": ref("NON"),
            },
            "CustomExtensions": [],
        }, amount

    def item_expense_lines(self) -> tuple[list[dict[str, Any]], int]:
        lines: list[dict[str, Any]] = []
        total = 0
        pool = self.inventory or self.sellable
        for n in range(1, self.rng.randint(1, 2) + 1):
            item = self.rng.choice(pool)
            cost = item.cost or self.rng.choice(_SERVICE_PRICES) // 2
            qty = self.rng.randint(1, 10)
            amount = cost * qty
            lines.append(
                {
                    "Id": str(n),
                    "LineNum": n,
                    "Description": item.spec.description or item.spec.name,
                    "Amount": money(amount),
                    "DetailType": "ItemBasedExpenseLineDetail",
                    "ItemBasedExpenseLineDetail": {
                        "BillableStatus": "NotBillable",
                        "ItemRef": ref(item.id, item.spec.name),
                        "UnitPrice": money(cost),
                        "Qty": qty,
                        "TaxCodeRef": ref("NON"),
                    },
                    "CustomExtensions": [],
                }
            )
            total += amount
        return lines, total

    def _item(self, item_id: str) -> _Item:
        return self.company.items[int(item_id) - 1]

    # the transactions ---------------------------------------------------------------------------

    def sales_form(
        self,
        kind: str,
        customer: _Party,
        txn_date: str,
        template: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        spec: sample.PartySpec = customer.spec
        if template is None:
            lines, subtotal, taxable = self.sales_lines(spec.taxable)
            tax_detail, tax = self.tax_detail(taxable)
        else:
            lines = [{k: v for k, v in line.items()} for line in template["Line"]]
            subtotal = round(float(lines[-1]["Amount"]) * 100)
            tax_detail = template["TxnTaxDetail"]
            tax = round(float(tax_detail.get("TotalTax") or 0) * 100)
        sign = {"Invoice": -1, "SalesReceipt": -1, "CreditMemo": 1, "RefundReceipt": 1}
        self.move_stock(lines, sign.get(kind, 0))
        self.company.tax_collected += tax if kind in ("Invoice", "SalesReceipt") else 0
        created = self.stamp(txn_date)
        record: dict[str, Any] = {}
        if kind == "Invoice":
            online = self.rng.random() < 0.3
            record.update(
                {
                    "AllowIPNPayment": False,
                    "AllowOnlinePayment": False,
                    "AllowOnlineCreditCardPayment": online,
                    "AllowOnlineACHPayment": online,
                }
            )
        record.update(_head(self.company.txn_id(), created))
        record.update(
            {
                "CustomField": [],
                "DocNumber": self.company.doc_number(),
                "TxnDate": txn_date,
                "CurrencyRef": dict(_USD),
            }
        )
        if kind in ("Invoice", "Estimate"):
            record["LinkedTxn"] = []
        record.update(
            {
                "Line": lines,
                "TxnTaxDetail": tax_detail,
                "CustomerRef": ref(customer.id, customer.name),
                "CustomerMemo": {"value": sample.CUSTOMER_MEMO},
            }
        )
        addr = _address(spec.address)
        if addr:
            record["BillAddr"] = addr
            record["ShipAddr"] = dict(addr)
        total = subtotal + tax
        if kind == "Invoice":
            record["SalesTermRef"] = ref("3", "Net 30")
            due = date.fromisoformat(txn_date) + timedelta(days=30)
            record["DueDate"] = due.isoformat()
        record.update(
            {
                "TotalAmt": money(total),
                "ApplyTaxAfterDiscount": False,
                "PrintStatus": "NeedToPrint",
                "EmailStatus": "NotSet",
            }
        )
        if spec.email:
            record["BillEmail"] = {"Address": spec.email}
        if kind == "Invoice":
            record["Balance"] = money(total)
        elif kind == "Estimate":
            record["TxnStatus"] = "Pending"
        return record

    def invoice(self) -> None:
        rng = self.rng
        estimate = self.take(self.estimates) if rng.random() < 0.5 else None
        if estimate is not None:
            customer = self.customer_by_id[estimate["CustomerRef"]["value"]]
            txn_date = self.later(estimate["TxnDate"], 10)
        else:
            customer = rng.choice(self.customers)
            txn_date = self.day()
        record = self.sales_form("Invoice", customer, txn_date, estimate)
        if estimate is not None:
            link = {"TxnId": estimate["Id"], "TxnType": "Estimate"}
            record["LinkedTxn"].append(dict(link))
            for line in record["Line"]:
                if line["DetailType"] == "SalesItemLineDetail":
                    line["LinkedTxn"] = [dict(link)]
            estimate["TxnStatus"] = "Closed"
            estimate["LinkedTxn"].append({"TxnId": record["Id"], "TxnType": "Invoice"})
            estimate["SyncToken"] = "1"
            estimate["MetaData"]["LastUpdatedTime"] = record["MetaData"]["CreateTime"]
        self.invoices.append(record)
        self.records["Invoice"].append(record)

    def estimate(self) -> None:
        customer = self.rng.choice(self.customers)
        record = self.sales_form("Estimate", customer, self.day())
        self.estimates.append(record)
        self.records["Estimate"].append(record)

    def sales_receipt(self) -> None:
        customer = self.rng.choice(self.customers)
        record = self.sales_form("SalesReceipt", customer, self.day())
        record.pop("LinkedTxn", None)
        record["Balance"] = 0
        method = self.rng.choice(sample.PAYMENT_METHODS[:3])
        record["PaymentMethodRef"] = ref(method.id, method.name)
        record["DepositToAccountRef"] = _acc(_UNDEPOSITED)
        self.undeposited.append(("SalesReceipt", record))
        self.records["SalesReceipt"].append(record)

    def credit_memo(self) -> None:
        customer = self.rng.choice(self.customers)
        record = self.sales_form("CreditMemo", customer, self.day())
        total = record["TotalAmt"]
        record = {"RemainingCredit": total, **record, "Balance": total}
        customer.balance -= round(float(total) * 100)
        self.records["CreditMemo"].append(record)

    def refund_receipt(self) -> None:
        customer = self.rng.choice(self.customers)
        record = self.sales_form("RefundReceipt", customer, self.day())
        record["Balance"] = 0
        record["PaymentMethodRef"] = ref("2", "Check")
        record["DepositToAccountRef"] = _acc(_CHECKING)
        self.records["RefundReceipt"].append(record)

    def payment(self) -> None:
        rng = self.rng
        invoice = self.take(self.invoices)
        if invoice is not None:
            balance = round(float(invoice["Balance"]) * 100)
            amount = balance if rng.random() < 0.75 else max(1, balance // 2)
            txn_date = self.later(invoice["TxnDate"], 30)
            customer = self.customer_by_id[invoice["CustomerRef"]["value"]]
        else:
            customer = rng.choice(self.customers)
            amount = rng.choice(_SERVICE_PRICES)
            txn_date = self.day()
            balance = 0
        created = self.stamp(txn_date)
        record: dict[str, Any] = {
            "CustomerRef": ref(customer.id, customer.name),
            "DepositToAccountRef": ref(_UNDEPOSITED),
            "TotalAmt": money(amount),
            "UnappliedAmt": 0 if invoice else money(amount),
            "ProcessPayment": False,
            **_head(self.company.txn_id(), created),
            "TxnDate": txn_date,
            "CurrencyRef": dict(_USD),
        }
        method = rng.choice(sample.PAYMENT_METHODS[:4])
        record["PaymentMethodRef"] = ref(method.id, method.name)
        if method.name == "Check":
            record["PaymentRefNum"] = str(rng.randint(1000, 9999))
        record["Line"] = []
        if invoice is not None:
            record["Line"].append(
                {
                    "Amount": money(amount),
                    "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}],
                    "LineEx": _line_ex(invoice["Id"], balance, invoice["DocNumber"]),
                }
            )
            invoice["Balance"] = money(balance - amount)
            invoice["LinkedTxn"].append({"TxnId": record["Id"], "TxnType": "Payment"})
            invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
            invoice["MetaData"]["LastUpdatedTime"] = max(
                invoice["MetaData"]["LastUpdatedTime"], created
            )
        else:
            customer.balance -= amount
        self.undeposited.append(("Payment", record))
        self.records["Payment"].append(record)

    def bill(self) -> None:
        rng = self.rng
        order = self.take(self.orders) if rng.random() < 0.5 else None
        if order is not None:
            vendor = self.vendor_by_id[order["VendorRef"]["value"]]
            lines = [{**line, "LinkedTxn": []} for line in order["Line"]]
            total = round(float(order["TotalAmt"]) * 100)
            txn_date = self.later(order["TxnDate"], 14)
        else:
            vendor = rng.choice(self.vendors)
            txn_date = self.day()
            if rng.random() < 0.3:
                lines, total = self.item_expense_lines()
            else:
                lines, total = [], 0
                for n in range(1, rng.randint(1, 2) + 1):
                    line, amount = self.expense_line(n, _BILL_ACCOUNTS)
                    line["LinkedTxn"] = []
                    lines.append(line)
                    total += amount
        self.move_stock(lines, 1)
        created = self.stamp(txn_date)
        spec: sample.PartySpec = vendor.spec
        record: dict[str, Any] = {
            "SalesTermRef": ref("3"),
            "DueDate": (date.fromisoformat(txn_date) + timedelta(days=30)).isoformat(),
        }
        addr = _address(spec.address)
        if addr:
            record["VendorAddr"] = addr
        record.update(
            {
                "Balance": money(total),
                **_head(self.company.txn_id(), created),
                "TxnDate": txn_date,
                "CurrencyRef": dict(_USD),
                "LinkedTxn": [],
                "Line": lines,
                "VendorRef": ref(vendor.id, vendor.name),
                "APAccountRef": _acc(_AP),
                "TotalAmt": money(total),
            }
        )
        if order is not None:
            record["LinkedTxn"].append({"TxnId": order["Id"], "TxnType": "PurchaseOrder"})
            order["POStatus"] = "Closed"
            order["LinkedTxn"].append({"TxnId": record["Id"], "TxnType": "Bill"})
            order["SyncToken"] = "1"
            order["MetaData"]["LastUpdatedTime"] = created
        self.bills.append(record)
        self.records["Bill"].append(record)

    def purchase_order(self) -> None:
        vendor = self.rng.choice(self.vendors)
        lines, total = self.item_expense_lines()
        txn_date = self.day()
        created = self.stamp(txn_date)
        spec: sample.PartySpec = vendor.spec
        record: dict[str, Any] = {}
        addr = _address(spec.address)
        if addr:
            record["VendorAddr"] = addr
        line1, city, state, postal = sample.COMPANY_ADDRESS
        record.update(
            {
                "ShipAddr": {
                    "Id": "93",
                    "Line1": sample.COMPANY_NAME,
                    "Line2": line1,
                    "Line3": f"{city}, {state}  {postal}",
                },
                "EmailStatus": "NotSet",
                "POStatus": "Open",
                **_head(self.company.txn_id(), created),
                "CustomField": [],
                "DocNumber": self.company.doc_number(),
                "TxnDate": txn_date,
                "CurrencyRef": dict(_USD),
                "LinkedTxn": [],
                "Line": lines,
                "VendorRef": ref(vendor.id, vendor.name),
                "APAccountRef": _acc(_AP),
                "TotalAmt": money(total),
            }
        )
        self.orders.append(record)
        self.records["PurchaseOrder"].append(record)

    def bill_payment(self) -> None:
        rng = self.rng
        bill = self.take(self.bills)
        if bill is None:  # pragma: no cover - allocate() never gives more payments than bills
            raise RuntimeError("a chunk has more bill payments than bills to pay")
        amount = round(float(bill["Balance"]) * 100)
        txn_date = self.later(bill["TxnDate"], 20)
        created = self.stamp(txn_date)
        by_card = rng.random() < 0.3
        record: dict[str, Any] = {
            "VendorRef": dict(bill["VendorRef"]),
            "PayType": "CreditCard" if by_card else "Check",
        }
        if by_card:
            record["CreditCardPayment"] = {"CCAccountRef": _acc(_MASTERCARD)}
        else:
            record["CheckPayment"] = {"BankAccountRef": _acc(_CHECKING), "PrintStatus": "NotSet"}
        record.update(
            {
                "TotalAmt": money(amount),
                **_head(self.company.txn_id(), created),
                "DocNumber": str(rng.randint(1, 9999)),
                "TxnDate": txn_date,
                "CurrencyRef": dict(_USD),
                "Line": [
                    {
                        "Amount": money(amount),
                        "LinkedTxn": [{"TxnId": bill["Id"], "TxnType": "Bill"}],
                    }
                ],
            }
        )
        bill["Balance"] = 0
        # QBO writes "BillPaymentCheck" whatever the PayType (query_bill_all.json).
        bill["LinkedTxn"].append({"TxnId": record["Id"], "TxnType": "BillPaymentCheck"})
        bill["SyncToken"] = str(int(bill["SyncToken"]) + 1)
        bill["MetaData"]["LastUpdatedTime"] = max(bill["MetaData"]["LastUpdatedTime"], created)
        self.records["BillPayment"].append(record)

    def purchase(self) -> None:
        rng = self.rng
        vendor = rng.choice(self.vendors)
        kind = rng.choice(("Cash", "Check", "CreditCard", "CreditCard"))
        account = rng.choice((_MASTERCARD, _VISA)) if kind == "CreditCard" else _CHECKING
        line, amount = self.expense_line(1, _EXPENSE_ACCOUNTS)
        line.pop("LineNum")
        txn_date = self.day()
        record: dict[str, Any] = {
            "AccountRef": _acc(account),
            "PaymentType": kind,
            "EntityRef": {"value": vendor.id, "name": vendor.name, "type": "Vendor"},
        }
        if kind == "CreditCard":
            record["Credit"] = False
        record.update(
            {
                "TotalAmt": money(amount),
                "PurchaseEx": _TXN_EX,
                **_head(self.company.txn_id(), self.stamp(txn_date)),
                "DocNumber": str(rng.randint(1, 9999)),
                "TxnDate": txn_date,
                "CurrencyRef": dict(_USD),
                "Line": [line],
            }
        )
        self.records["Purchase"].append(record)

    def deposits(self, count: int) -> None:
        rng = self.rng
        waiting = sorted(self.undeposited, key=lambda pair: (pair[1]["TxnDate"], pair[1]["Id"]))
        keep = len(waiting) // 5
        waiting = waiting[: len(waiting) - keep]
        groups: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in range(count)]
        for n, pair in enumerate(waiting):
            groups[min(count - 1, n * count // max(1, len(waiting)))].append(pair)
        for n, group in enumerate(groups):
            opening = self.first_day == 0 and n == 0
            if group and not opening:
                last = max(pair[1]["TxnDate"] for pair in group)
                txn_date = self.later(last, 3)
            else:
                txn_date = self.company.start.isoformat() if opening else self.day()
            created = self.stamp(txn_date)
            record_id = self.company.txn_id()
            lines: list[dict[str, Any]] = []
            total = 0
            if opening or not group:
                amount = 2500000 if opening else rng.randint(1000, 20000)
                account = _OPENING_EQUITY if opening else _INTEREST
                lines.append(
                    {
                        "Id": "1",
                        "LineNum": 1,
                        "Amount": money(amount),
                        "DetailType": "DepositLineDetail",
                        "DepositLineDetail": {"AccountRef": _acc(account)},
                        "CustomExtensions": [],
                    }
                )
                total = amount
                group = []
            for kind, source in group:
                amount = round(float(source["TotalAmt"]) * 100)
                line: dict[str, Any] = {
                    "Amount": money(amount),
                    "LinkedTxn": [{"TxnId": source["Id"], "TxnType": kind, "TxnLineId": "0"}],
                }
                lines.append(line)
                total += amount
                source.setdefault("LinkedTxn", []).append(
                    {"TxnId": record_id, "TxnType": "Deposit"}
                )
                source["SyncToken"] = str(int(source["SyncToken"]) + 1)
                source["MetaData"]["LastUpdatedTime"] = max(
                    source["MetaData"]["LastUpdatedTime"], created
                )
            record: dict[str, Any] = {"DepositToAccountRef": _acc(_CHECKING)}
            if total > 20000 and rng.random() < 0.2:
                back = total // 10
                record["CashBack"] = {
                    "AccountRef": _acc(_SAVINGS),
                    "Amount": money(back),
                    "Memo": "Money to savings",
                }
                total -= back
            record.update(
                {
                    "TotalAmt": money(total),
                    **_head(record_id, created),
                    "TxnDate": txn_date,
                    "CurrencyRef": dict(_USD),
                }
            )
            if opening:
                record["PrivateNote"] = "Opening Balance"
            record.update({"Line": lines, "TxnTaxDetail": {}})
            self.records["Deposit"].append(record)

    def journal_entry(self, opening: bool) -> None:
        rng = self.rng
        txn_date = self.company.start.isoformat() if opening else self.day()
        if opening:
            stock = sum(round(i.qty * i.cost) for i in self.company.items if i.qty > 0)
            pairs = [
                (_TRUCK_COST, 1349500, "Debit"),
                (_INVENTORY, stock, "Debit"),
                (_LOAN, 400000, "Credit"),
                (_NOTES, 2500000, "Credit"),
            ]
            balance = sum(a if side == "Debit" else -a for _, a, side in pairs)
            pairs.append((_OPENING_EQUITY, abs(balance), "Credit" if balance > 0 else "Debit"))
            note = "Opening Balance"
        else:
            amount = rng.randint(5000, 80000)
            debit, credit, note = rng.choice(
                (
                    (_DEPRECIATION_EXP, _DEPRECIATION_ACC, "Monthly depreciation"),
                    ("3", _CHECKING, "Prepaid insurance"),
                    ("15", "3", "Prepaid expense used"),
                    (_LOAN, _CHECKING, "Loan repayment"),
                )
            )
            pairs = [(debit, amount, "Debit"), (credit, amount, "Credit")]
        lines: list[dict[str, Any]] = [
            {
                "Id": str(n),
                "Description": note,
                "Amount": money(amount),
                "DetailType": "JournalEntryLineDetail",
                "JournalEntryLineDetail": {"PostingType": side, "AccountRef": _acc(account)},
                "CustomExtensions": [],
            }
            for n, (account, amount, side) in enumerate(p for p in pairs if p[1])
        ]
        record = {
            "Adjustment": False,
            "TotalAmt": 0,
            **_head(self.company.txn_id(), self.stamp(txn_date)),
            "DocNumber": self.company.doc_number(),
            "TxnDate": txn_date,
            "CurrencyRef": dict(_USD),
            "PrivateNote": note,
            "Line": lines,
            "TxnTaxDetail": {},
        }
        self.records["JournalEntry"].append(record)

    def vendor_credit(self) -> None:
        vendor = self.rng.choice(self.vendors)
        line, amount = self.expense_line(1, _BILL_ACCOUNTS)
        txn_date = self.day()
        record = {
            **_head(self.company.txn_id(), self.stamp(txn_date)),
            "VendorRef": ref(vendor.id, vendor.name),
            "TxnDate": txn_date,
            "CurrencyRef": dict(_USD),
            "TotalAmt": money(amount),
            "APAccountRef": _acc(_AP),
            "Line": [line],
            "Balance": money(amount),
        }
        vendor.balance -= amount
        self.records["VendorCredit"].append(record)

    def transfer(self) -> None:
        txn_date = self.day()
        amount = self.rng.randint(10, 200) * 1000
        self.records["Transfer"].append(
            {
                **_head(self.company.txn_id(), self.stamp(txn_date)),
                "FromAccountRef": _acc(_CHECKING),
                "ToAccountRef": _acc(_SAVINGS),
                "Amount": money(amount),
                "TxnDate": txn_date,
                "CurrencyRef": dict(_USD),
                "PrivateNote": "Monthly savings transfer",
            }
        )

    def credit_card_payment(self) -> None:
        txn_date = self.day()
        amount = self.rng.randint(50, 500) * 100
        self.records["CreditCardPayment"].append(
            {
                **_head(self.company.txn_id(), self.stamp(txn_date)),
                "TxnDate": txn_date,
                "Amount": money(amount),
                "BankAccountRef": _acc(_CHECKING),
                "CreditCardAccountRef": _acc(_MASTERCARD),
                "CurrencyRef": dict(_USD),
                "PrivateNote": "Mastercard payment",
            }
        )

    def inventory_adjustment(self) -> None:
        pool = self.inventory or self.sellable
        item = self.rng.choice(pool)
        qty = -self.rng.randint(1, 3)
        if item.spec.type == "Inventory":
            item.qty += qty
        txn_date = self.day()
        self.records["InventoryAdjustment"].append(
            {
                **_head(self.company.txn_id(), self.stamp(txn_date)),
                "DocNumber": self.company.doc_number(),
                "TxnDate": txn_date,
                "AdjustAccountRef": _acc(_COGS),
                "CurrencyRef": dict(_USD),
                "PrivateNote": "Damaged in storage",
                "Line": [
                    {
                        "Id": "1",
                        "LineNum": 1,
                        "DetailType": "ItemAdjustmentLineDetail",
                        "ItemAdjustmentLineDetail": {
                            "ItemRef": ref(item.id, item.spec.name),
                            "QtyDiff": qty,
                        },
                    }
                ],
            }
        )

    def time_activity(self) -> None:
        employee = self.rng.choice(self.employees)
        customer = self.rng.choice(self.customers)
        services = [i for i in self.sellable if i.spec.type == "Service"] or self.sellable
        item = self.rng.choice(services)
        txn_date = self.day()
        self.records["TimeActivity"].append(
            {
                "TxnDate": txn_date,
                "domain": "QBO",
                "NameOf": "Employee",
                "Description": item.spec.description or item.spec.name,
                "ItemRef": ref(item.id, item.spec.name),
                "Minutes": 0,
                "Hours": self.rng.randint(1, 8),
                "BillableStatus": "NotBillable",
                "sparse": False,
                "HourlyRate": 15,
                "Taxable": False,
                "EmployeeRef": ref(employee.id, employee.name),
                "SyncToken": "0",
                "CustomerRef": ref(customer.id, customer.name),
                "Id": self.company.txn_id(),
                "MetaData": _meta(self.stamp(txn_date)),
            }
        )

    def reimburse_charge(self) -> None:
        customer = self.rng.choice(self.customers)
        amount = self.rng.randint(1000, 20000)
        txn_date = self.day()
        self.records["ReimburseCharge"].append(
            {
                **_head(self.company.txn_id(), self.stamp(txn_date)),
                "TxnDate": txn_date,
                "CurrencyRef": dict(_USD),
                "CustomerRef": ref(customer.id, customer.name),
                "Amount": money(amount),
                "HasBeenInvoiced": False,
                "Line": [
                    {
                        "Id": "1",
                        "LineNum": 1,
                        "Amount": money(amount),
                        "DetailType": "ReimburseLineDetail",
                        "ReimburseLineDetail": {
                            "ItemAccountRef": _acc(_BILLABLE_INCOME),
                            "TaxCodeRef": ref("NON"),
                        },
                    }
                ],
            }
        )

    def tax_payment(self) -> None:
        amount = max(100, self.company.tax_collected // 2)
        self.company.tax_collected -= amount
        txn_date = self.day()
        self.records["TaxPayment"].append(
            {
                **_head(self.company.txn_id(), self.stamp(txn_date)),
                "PaymentDate": txn_date,
                "PaymentAmount": money(amount),
                "PaymentAccountRef": _acc(_CHECKING),
                "Refund": False,
                "Description": "Sales tax payment to the Board of Equalization",
            }
        )


def _line_ex(txn_id: str, open_balance: int, doc_number: str) -> dict[str, Any]:
    def pair(name: str, value: str) -> dict[str, Any]:
        return {
            "name": "{http://schema.intuit.com/finance/v3}NameValue",
            "declaredType": "com.intuit.schema.finance.v3.NameValue",
            "scope": "javax.xml.bind.JAXBElement$GlobalScope",
            "value": {"Name": name, "Value": value},
            "nil": False,
            "globalScope": True,
            "typeSubstituted": False,
        }

    return {
        "any": [
            pair("txnId", txn_id),
            pair("txnOpenBalance", f"{open_balance / 100:.2f}"),
            pair("txnReferenceNumber", doc_number),
        ]
    }


_ORDER = (
    "JournalEntry",
    "Estimate",
    "PurchaseOrder",
    "TimeActivity",
    "Invoice",
    "SalesReceipt",
    "CreditMemo",
    "RefundReceipt",
    "Bill",
    "VendorCredit",
    "Purchase",
    "Transfer",
    "InventoryAdjustment",
    "CreditCardPayment",
    "ReimburseCharge",
    "Payment",
    "BillPayment",
    "TaxPayment",
    "Deposit",
)
"""The order a chunk makes its transactions in: documents before what links to them."""


def _make_chunk(chunk: _Chunk, counts: dict[str, int]) -> None:
    makers = {
        "Estimate": chunk.estimate,
        "PurchaseOrder": chunk.purchase_order,
        "TimeActivity": chunk.time_activity,
        "Invoice": chunk.invoice,
        "SalesReceipt": chunk.sales_receipt,
        "CreditMemo": chunk.credit_memo,
        "RefundReceipt": chunk.refund_receipt,
        "Bill": chunk.bill,
        "VendorCredit": chunk.vendor_credit,
        "Purchase": chunk.purchase,
        "Transfer": chunk.transfer,
        "InventoryAdjustment": chunk.inventory_adjustment,
        "CreditCardPayment": chunk.credit_card_payment,
        "ReimburseCharge": chunk.reimburse_charge,
        "Payment": chunk.payment,
        "BillPayment": chunk.bill_payment,
        "TaxPayment": chunk.tax_payment,
    }
    for entity in _ORDER:
        count = counts.get(entity, 0)
        if entity == "Deposit":
            if count:
                chunk.deposits(count)
        elif entity == "JournalEntry":
            for n in range(count):
                chunk.journal_entry(opening=chunk.first_day == 0 and n == 0)
        else:
            for _ in range(count):
                makers[entity]()


# --- the whole company ------------------------------------------------------------------------


def _history_days(transactions: int) -> int:
    return 365 if transactions <= 2000 else 3 * 365


def _finish_transactions(company: _Company, records: dict[str, list[dict[str, Any]]]) -> None:
    """Post to the ledger and the party balances; name the user who wrote each record.

    Where QBO names the last writer (catalogue ``names_modifier``: invoices, bills, purchase
    orders), it is the company's sandbox user, who keyed the books in.
    """
    customers = {c.id: c for c in company.customers}
    vendors = {v.id: v for v in company.vendors}
    user = {"value": openid.user_id(company.realm_id)}
    for entity, batch in records.items():
        modifier = entities.get(entity).names_modifier
        for record in batch:
            if modifier:
                meta = record["MetaData"]
                record["MetaData"] = {
                    "CreateTime": meta["CreateTime"],
                    "LastModifiedByRef": dict(user),
                    **{k: v for k, v in meta.items() if k != "CreateTime"},
                }
            for account, amount in postings(entity, record, company.chart):
                company.account_balances[account] += amount
            if entity == "Invoice":
                customers[record["CustomerRef"]["value"]].balance += round(
                    float(record["Balance"]) * 100
                )
            elif entity == "Bill":
                vendors[record["VendorRef"]["value"]].balance += round(
                    float(record["Balance"]) * 100
                )


def generate_company(
    store: SandboxStore,
    realm_id: str,
    *,
    seed: int = 42,
    transactions: int | None = None,
    company_name: str | None = None,
    start: date | None = None,
    anchor: datetime | None = None,
) -> GenerationSummary:
    """Fill a realm with a generated company modelled on the real sample company.

    Args:
        store: The sandbox store.
        realm_id: The company's realm id (numeric text); the realm is created if needed.
        seed: Same seed, same company, byte for byte.
        transactions: How many transactions; None gives the sample company's real counts
            (:data:`sample_company.DEFAULT_TRANSACTIONS`). At least one of each transaction
            entity is always made.
        company_name: Defaults to "Craig's Design and Landscaping Services".
        start: The first day of the books; the realm's clock is then set to 09:00 on the
            morning after the last day (one year later, three years for large companies).
        anchor: When the history ends when no ``start`` is given: the books run up to the day
            before and the clock reads ``anchor``. Defaults to the realm's clock, the host's
            time for a new realm (whose clock then follows the host's).

    Returns:
        What was generated, with record counts per entity.

    Raises:
        ValueError: If ``transactions`` is too small, or the realm already holds records.
    """
    total = sample.DEFAULT_TRANSACTIONS if transactions is None else int(transactions)
    per_entity = (
        dict(sample.TRANSACTION_COUNTS)
        if transactions is None
        else allocate(total, sample.TRANSACTION_COUNTS)
    )
    name = company_name or sample.COMPANY_NAME
    days = _history_days(total)
    exists = store.has_realm(realm_id)
    if exists and store.count(realm_id, "Account"):
        raise ValueError(f"sandbox realm {realm_id!r} already holds a company")
    if start is not None:
        first = start
        clock = datetime.combine(first + timedelta(days=days), time(9, 0), COMPANY_TZ)
    else:
        if anchor is not None and anchor.tzinfo is None:
            raise ValueError("anchor must be time-zone aware")
        clock = anchor or (store.now(realm_id) if exists else datetime.now(UTC))
        first = clock.astimezone(COMPANY_TZ).date() - timedelta(days=days)
    if exists:
        store.set_clock(realm_id, clock)
    else:
        follows_host = start is None and anchor is None
        store.create_realm(realm_id, name, clock_start=None if follows_host else clock)
    rng = random.Random(seed)
    company = _Company(realm_id, first, days)
    _build_lists(company, rng, total / sample.DEFAULT_TRANSACTIONS)
    counts: dict[str, int] = defaultdict(int)
    chunks = max(1, math.ceil(total / CHUNK_TRANSACTIONS))
    for k in range(chunks):
        share = {e: n * (k + 1) // chunks - n * k // chunks for e, n in per_entity.items()}
        chunk = _Chunk(
            company,
            random.Random(seed * 1_000_003 + k),
            k * days // chunks,
            (k + 1) * days // chunks - 1,
        )
        _make_chunk(chunk, share)
        _finish_transactions(company, chunk.records)
        for entity, batch in chunk.records.items():
            counts[entity] += store.bulk_load(realm_id, entity, batch)
    for entity, payloads in _list_payloads(company, name).items():
        counts[entity] += store.bulk_load(realm_id, entity, payloads)
    counts["Attachable"] += _attachments(store, company, rng, total)
    return GenerationSummary(realm_id, seed, name, first, clock, dict(counts))


def _list_payloads(company: _Company, name: str) -> dict[str, Iterable[dict[str, Any]]]:
    created = _name_time(company.start, 0)
    by_id = {c.id: c for c in company.customers}
    with_jobs = _balances_with_jobs(company.customers)
    stamp = iter(range(1, 10**9))

    def at() -> str:
        return _name_time(company.start, next(stamp))

    out: dict[str, Iterable[dict[str, Any]]] = {
        "Account": list(_account_payloads(company, created, company.account_balances)),
        # Generators: at scale the party lists are large, so payloads stream into the store.
        "Customer": (_customer_payload(c, at(), by_id, with_jobs) for c in company.customers),
        "Vendor": (_vendor_payload(v, at()) for v in company.vendors),
        "Employee": (_employee_payload(e, at()) for e in company.employees),
        "Item": (_item_payload(i, at()) for i in company.items),
        "Term": list(_named_payloads("Term", sample.TERMS, created)),
        "PaymentMethod": list(_named_payloads("PaymentMethod", sample.PAYMENT_METHODS, created)),
        "Class": list(_named_payloads("Class", sample.CLASSES, created)),
        "Department": list(_named_payloads("Department", sample.DEPARTMENTS, created)),
        "CustomerType": list(_named_payloads("CustomerType", sample.CUSTOMER_TYPES, created)),
        "CompanyCurrency": list(_named_payloads("CompanyCurrency", sample.CURRENCIES, created)),
        "TaxAgency": list(_tax_agency_payloads(created)),
        "TaxRate": list(_tax_rate_payloads(created)),
        "TaxCode": list(_tax_code_payloads(created)),
        "ExchangeRate": _exchange_rates(company, created),
        "Budget": [_budget(company, created)],
        "RecurringTransaction": [_recurring_bill(company, created)],
        "CompanyInfo": [_company_info(company, name, created)],
        "Preferences": [_preferences(name, created)],
    }
    return out


def _exchange_rates(company: _Company, created: str) -> list[dict[str, Any]]:
    rates = {"EUR": 1.08, "CAD": 0.74, "GBP": 1.27}
    as_of = (company.start + timedelta(days=company.days - 1)).isoformat()
    # No Id, as exchangerate_doc.json shows: QBO addresses a rate by currency and date.
    return [
        {
            "SyncToken": "0",
            "domain": "QBO",
            "AsOfDate": as_of,
            "SourceCurrencyCode": code,
            "Rate": rate,
            "sparse": False,
            "TargetCurrencyCode": "USD",
            "MetaData": {"LastUpdatedTime": created},
        }
        for code, rate in rates.items()
    ]


def _budget(company: _Company, created: str) -> dict[str, Any]:
    year = company.start.year
    details = [
        {
            "BudgetDate": f"{year}-{month:02d}-01",
            "Amount": amount,
            "AccountRef": _acc(account),
        }
        for month in range(1, 13)
        for account, amount in (("45", 4000), ("17", 900), ("24", 250))
    ]
    return {
        **_head("1", created),
        "Name": f"FY{year} Budget",
        "StartDate": f"{year}-01-01",
        "EndDate": f"{year}-12-31",
        "BudgetType": "ProfitAndLoss",
        "BudgetEntryType": "Monthly",
        "Active": True,
        "BudgetDetail": details,
    }


def _recurring_bill(company: _Company, created: str) -> dict[str, Any]:
    vendor = next(v for v in company.vendors if v.id == "32")
    start = company.start
    template = {
        "SyncToken": "0",
        "domain": "QBO",
        "RecurringInfo": {
            "Active": True,
            "RecurType": "Automated",
            "ScheduleInfo": {
                "NumInterval": 1,
                "NextDate": (start + timedelta(days=company.days)).replace(day=1).isoformat(),
                "DayOfMonth": 1,
                "IntervalType": "Monthly",
            },
            "Name": "Telephone Bill",
        },
        "RecurDataRef": ref("2"),
        "CurrencyRef": dict(_USD),
        "TotalAmt": 74.36,
        "APAccountRef": _acc(_AP),
        "Id": "1",
        "sparse": False,
        "VendorRef": ref(vendor.id, vendor.name),
        "Line": [
            {
                "Description": "Monthly Phone Bill",
                "DetailType": "AccountBasedExpenseLineDetail",
                "LineNum": 1,
                "Amount": 74.36,
                "Id": "1",
                "AccountBasedExpenseLineDetail": {
                    "TaxCodeRef": ref("NON"),
                    "AccountRef": _acc("77"),
                    "BillableStatus": "NotBillable",
                },
            }
        ],
        "Balance": 74.36,
        "SalesTermRef": ref("3"),
        "MetaData": _meta(created),
    }
    # As recurringtransaction_doc.json shows: only the wrapped Bill, which carries the Id.
    return {"Bill": template}


def _company_info(company: _Company, name: str, created: str) -> dict[str, Any]:
    line1, city, state, postal = sample.COMPANY_ADDRESS
    addr = {
        "City": city,
        "Country": "US",
        "Line1": line1,
        "PostalCode": postal,
        "CountrySubDivisionCode": state,
        "Id": "1",
    }
    return {
        **_head("1", created),
        "CompanyName": name,
        "LegalName": name,
        "CompanyAddr": dict(addr),
        "CustomerCommunicationAddr": dict(addr),
        "LegalAddr": dict(addr),
        "PrimaryPhone": {"FreeFormNumber": "(650) 944-4444"},
        "CompanyStartDate": company.start.isoformat(),
        "FiscalYearStartMonth": "January",
        "Country": "US",
        "Email": {"Address": "noreply@quickbooks.com"},
        "WebAddr": {},
        "SupportedLanguages": "en",
        "NameValue": [
            {"Name": "NeoEnabled", "Value": "true"},
            {"Name": "IndustryType", "Value": "Landscaping Services"},
            {"Name": "SubscriptionStatus", "Value": "PAID"},
            {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"},
            {"Name": "PayrollFeature", "Value": "false"},
            {"Name": "AccountantFeature", "Value": "false"},
        ],
    }


def _preferences(name: str, created: str) -> dict[str, Any]:
    def message(kind: str, text: str) -> dict[str, str]:
        return {"Subject": f"{kind} from {name}", "Message": f"{text}\n\nSincerely,\n{name}"}

    return {
        "AccountingInfoPrefs": {
            "TrackDepartments": True,
            "DepartmentTerminology": "Location",
            "ClassTrackingPerTxn": False,
            "ClassTrackingPerTxnLine": True,
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
            "AllowDiscount": True,
            "DefaultDiscountAccount": _DISCOUNTS,
            "AllowEstimates": True,
            "AllowServiceDate": False,
            "AllowShipping": False,
            "DefaultTerms": ref("3"),
            "DefaultCustomerMessage": sample.CUSTOMER_MEMO,
        },
        "EmailMessagesPrefs": {
            "InvoiceMessage": message("Invoice", "Your invoice is attached."),
            "EstimateMessage": message("Estimate", "Please review the estimate below."),
        },
        "VendorAndPurchasesPrefs": {"TrackingByCustomer": True, "BillableExpenseTracking": True},
        "TimeTrackingPrefs": {
            "UseServices": True,
            "BillCustomers": True,
            "ShowBillRateToAll": False,
            "WorkWeekStartDate": "Monday",
            "MarkTimeEntriesBillable": True,
        },
        "TaxPrefs": {"UsingSalesTax": True, "TaxGroupCodeRef": ref(sample.DEFAULT_TAX_CODE)},
        "CurrencyPrefs": {"MultiCurrencyEnabled": True, "HomeCurrency": ref("USD")},
        "ReportPrefs": {"ReportBasis": "Accrual", "CalcAgingReportFromTxnDate": False},
        "OtherPrefs": {
            "NameValue": [
                {"Name": "SalesFormsPrefs.DefaultCustomerMessage", "Value": sample.CUSTOMER_MEMO},
                {"Name": "UncategorizedAssetAccountId", "Value": "32"},
                {"Name": "UncategorizedIncomeAccountId", "Value": "30"},
                {"Name": "UncategorizedExpenseAccountId", "Value": "31"},
            ]
        },
        **_head("1", created),
    }


def _attachments(store: SandboxStore, company: _Company, rng: random.Random, total: int) -> int:
    """Small receipts attached to a few bills and invoices, their bytes stored as blobs."""
    wanted = min(200, max(2, total // 500))
    made = 0
    for entity in ("Bill", "Invoice"):
        share = wanted // 2 if entity == "Bill" else wanted - wanted // 2
        records: list[dict[str, Any]] = []
        for target in store.iter_records(company.realm_id, entity):
            if len(records) >= share:
                break
            attachable_id = str(ATTACHMENT_ID_BASE + made + len(records) + 1)
            created = target["MetaData"]["CreateTime"]
            name = f"{entity.lower()}_{target['Id']}_receipt.txt"
            content = (
                f"{sample.COMPANY_NAME}\n{entity} {target['Id']} dated {target['TxnDate']}\n"
                f"Total: {target['TotalAmt']} USD\nRef: {rng.randrange(10**8):08d}\n"
            ).encode()
            store.put_blob(company.realm_id, attachable_id, "text/plain", content)
            records.append(
                {
                    "FileName": name,
                    "FileAccessUri": f"/v3/company/{company.realm_id}/download/{attachable_id}",
                    "Size": len(content),
                    "ContentType": "text/plain",
                    **_head(attachable_id, created),
                    "AttachableRef": [
                        {
                            "EntityRef": {"value": target["Id"], "type": entity},
                            "IncludeOnSend": False,
                        }
                    ],
                }
            )
        made += store.bulk_load(company.realm_id, "Attachable", records)
    return made
