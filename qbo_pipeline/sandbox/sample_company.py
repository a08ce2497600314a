"""The real sample company the generator models: Craig's Design and Landscaping Services.

Names, ids, account structure and counts come from the real QBO wire captures of Intuit's sample
company (``shared/qbo-reference/samples``): customer 1 is "Amy's Bird Sanctuary", vendors start at
id 30, employees are 54 and 55, accounts run 1-90 (89 of them), items 1-18 (4 inventory). Test
artefacts the captures picked up ("Test Account Updated", "Test Item Updated") carry their
original sample-company names here ("Services"). Lists the captures do not show (classes,
departments, customer types, currencies) are small, plausible additions so that every catalogue
entity is present.

This module is data only: the generator turns it into complete QBO payloads.
"""

from __future__ import annotations

from typing import NamedTuple

COMPANY_NAME = "Craig's Design and Landscaping Services"
"""The sample company's name (CompanyInfo.CompanyName)."""

COMPANY_ADDRESS = ("123 Sierra Way", "San Pablo", "CA", "87999")
"""Line1, City, CountrySubDivisionCode, PostalCode of the company (ShipAddr of purchase orders)."""

CUSTOMER_MEMO = "Thank you for your business and have a great day!"
"""The default customer message on sales forms (Preferences.SalesFormsPrefs)."""

Address = tuple[str, str | None, str | None, str | None, str | None, str | None, str | None]
"""Id, Line1, City, CountrySubDivisionCode, PostalCode, Lat, Long."""


class AccountSpec(NamedTuple):
    """One account of the chart of accounts."""

    id: str
    name: str
    account_type: str
    sub_type: str
    classification: str
    parent: str | None
    active: bool = True


class PartySpec(NamedTuple):
    """A customer or vendor as the captures show it."""

    id: str
    display_name: str
    given_name: str | None
    family_name: str | None
    company_name: str | None
    email: str | None
    phone: str | None
    address: Address | None
    parent: str | None = None
    taxable: bool = False
    active: bool = True
    acct_num: str | None = None
    vendor_1099: bool | None = None
    term: str | None = None


class ItemSpec(NamedTuple):
    """One product or service."""

    id: str
    name: str
    type: str
    description: str | None
    unit_price: float | int | None
    purchase_cost: float | int | None
    income_account: str | None
    expense_account: str | None
    asset_account: str | None
    qty: float | int | None = None
    taxable: bool = False


class EmployeeSpec(NamedTuple):
    """One employee."""

    id: str
    given_name: str
    family_name: str
    phone: str | None
    birth_date: str | None
    hired_date: str | None
    active: bool


class NamedSpec(NamedTuple):
    """A small list record: term, payment method, class, department, customer type."""

    id: str
    name: str
    detail: str | int | None = None
    active: bool = True


ACCOUNTS: tuple[AccountSpec, ...] = (
    AccountSpec("1", "Services", "Income", "ServiceFeeIncome", "Revenue", None),
    AccountSpec("2", "Retained Earnings", "Equity", "RetainedEarnings", "Equity", None),
    AccountSpec("3", "Prepaid Expenses", "Other Current Asset", "PrepaidExpenses", "Asset", None),
    AccountSpec("4", "Undeposited Funds", "Other Current Asset", "UndepositedFunds", "Asset", None),
    AccountSpec("5", "Fees Billed", "Income", "ServiceFeeIncome", "Revenue", None, active=False),
    AccountSpec("6", "Refunds-Allowances", "Income", "DiscountsRefundsGiven", "Revenue", None),
    AccountSpec("7", "Advertising", "Expense", "AdvertisingPromotional", "Expense", None),
    AccountSpec("8", "Bank Charges", "Expense", "BankCharges", "Expense", None),
    AccountSpec(
        "9", "Commissions & fees", "Expense", "OtherMiscellaneousServiceCost", "Expense", None
    ),
    AccountSpec("10", "Dues & Subscriptions", "Expense", "DuesSubscriptions", "Expense", None),
    AccountSpec("11", "Insurance", "Expense", "Insurance", "Expense", None),
    AccountSpec(
        "12", "Legal & Professional Fees", "Expense", "LegalProfessionalFees", "Expense", None
    ),
    AccountSpec("13", "Meals and Entertainment", "Expense", "EntertainmentMeals", "Expense", None),
    AccountSpec(
        "14", "Miscellaneous", "Other Expense", "OtherMiscellaneousExpense", "Expense", None
    ),
    AccountSpec(
        "15", "Office Expenses", "Expense", "OfficeGeneralAdministrativeExpenses", "Expense", None
    ),
    AccountSpec("16", "Promotional", "Expense", "AdvertisingPromotional", "Expense", None),
    AccountSpec("17", "Rent or Lease", "Expense", "RentOrLeaseOfBuildings", "Expense", None),
    AccountSpec(
        "19",
        "Stationery & Printing",
        "Expense",
        "OfficeGeneralAdministrativeExpenses",
        "Expense",
        None,
    ),
    AccountSpec("20", "Supplies", "Expense", "SuppliesMaterials", "Expense", None),
    AccountSpec("21", "Taxes & Licenses", "Expense", "TaxesPaid", "Expense", None),
    AccountSpec("22", "Travel", "Expense", "Travel", "Expense", None),
    AccountSpec("23", "Travel Meals", "Expense", "TravelMeals", "Expense", None),
    AccountSpec("24", "Utilities", "Expense", "Utilities", "Expense", None),
    AccountSpec("25", "Interest Earned", "Other Income", "InterestEarned", "Revenue", None),
    AccountSpec(
        "26", "Other Portfolio Income", "Other Income", "OtherMiscellaneousIncome", "Revenue", None
    ),
    AccountSpec(
        "27", "Penalties & Settlements", "Other Expense", "PenaltiesSettlements", "Expense", None
    ),
    AccountSpec("28", "Disposal Fees", "Expense", "OtherMiscellaneousServiceCost", "Expense", None),
    AccountSpec("29", "Equipment Rental", "Expense", "EquipmentRental", "Expense", None),
    AccountSpec("30", "Uncategorized Income", "Income", "ServiceFeeIncome", "Revenue", None),
    AccountSpec(
        "31", "Uncategorized Expense", "Expense", "OtherMiscellaneousServiceCost", "Expense", None
    ),
    AccountSpec(
        "32", "Uncategorized Asset", "Other Current Asset", "OtherCurrentAssets", "Asset", None
    ),
    AccountSpec(
        "33", "Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable", "Liability", None
    ),
    AccountSpec("34", "Opening Balance Equity", "Equity", "OpeningBalanceEquity", "Equity", None),
    AccountSpec("35", "Checking", "Bank", "Checking", "Asset", None),
    AccountSpec("36", "Savings", "Bank", "Savings", "Asset", None),
    AccountSpec("37", "Truck", "Fixed Asset", "Vehicles", "Asset", None),
    AccountSpec("38", "Original Cost", "Fixed Asset", "Vehicles", "Asset", "37"),
    AccountSpec("39", "Depreciation", "Fixed Asset", "AccumulatedDepreciation", "Asset", "37"),
    AccountSpec("40", "Depreciation", "Other Expense", "Depreciation", "Expense", None),
    AccountSpec("41", "Mastercard", "Credit Card", "CreditCard", "Liability", None),
    AccountSpec("42", "Visa", "Credit Card", "CreditCard", "Liability", None),
    AccountSpec(
        "43",
        "Loan Payable",
        "Other Current Liability",
        "OtherCurrentLiabilities",
        "Liability",
        None,
    ),
    AccountSpec(
        "44", "Notes Payable", "Long Term Liability", "OtherLongTermLiabilities", "Liability", None
    ),
    AccountSpec("45", "Landscaping Services", "Income", "OtherPrimaryIncome", "Revenue", None),
    AccountSpec("46", "Job Materials", "Income", "OtherPrimaryIncome", "Revenue", "45"),
    AccountSpec("47", "Decks and Patios", "Income", "OtherPrimaryIncome", "Revenue", "46"),
    AccountSpec(
        "48", "Fountains and Garden Lighting", "Income", "OtherPrimaryIncome", "Revenue", "46"
    ),
    AccountSpec("49", "Plants and Soil", "Income", "OtherPrimaryIncome", "Revenue", "46"),
    AccountSpec(
        "50", "Sprinklers and Drip Systems", "Income", "OtherPrimaryIncome", "Revenue", "46"
    ),
    AccountSpec("51", "Labor", "Income", "OtherPrimaryIncome", "Revenue", "45"),
    AccountSpec("52", "Installation", "Income", "OtherPrimaryIncome", "Revenue", "51"),
    AccountSpec("53", "Maintenance and Repair", "Income", "OtherPrimaryIncome", "Revenue", "51"),
    AccountSpec("54", "Pest Control Services", "Income", "OtherPrimaryIncome", "Revenue", None),
    AccountSpec("55", "Automobile", "Expense", "Auto", "Expense", None),
    AccountSpec("56", "Fuel", "Expense", "Auto", "Expense", "55"),
    AccountSpec("57", "Workers Compensation", "Expense", "Insurance", "Expense", "11"),
    AccountSpec("58", "Job Expenses", "Expense", "OtherMiscellaneousServiceCost", "Expense", None),
    AccountSpec("59", "Cost of Labor", "Expense", "OtherMiscellaneousServiceCost", "Expense", "58"),
    AccountSpec("60", "Installation", "Expense", "OtherMiscellaneousServiceCost", "Expense", "59"),
    AccountSpec(
        "61", "Maintenance and Repairs", "Expense", "OtherMiscellaneousServiceCost", "Expense", "59"
    ),
    AccountSpec("62", "Equipment Rental", "Expense", "EquipmentRental", "Expense", "58"),
    AccountSpec("63", "Job Materials", "Expense", "SuppliesMaterials", "Expense", "58"),
    AccountSpec("64", "Decks and Patios", "Expense", "SuppliesMaterials", "Expense", "63"),
    AccountSpec(
        "65", "Fountain and Garden Lighting", "Expense", "SuppliesMaterials", "Expense", "63"
    ),
    AccountSpec("66", "Plants and Soil", "Expense", "SuppliesMaterials", "Expense", "63"),
    AccountSpec(
        "67", "Sprinklers and Drip Systems", "Expense", "SuppliesMaterials", "Expense", "63"
    ),
    AccountSpec("68", "Permits", "Expense", "OtherMiscellaneousServiceCost", "Expense", "58"),
    AccountSpec("69", "Accounting", "Expense", "LegalProfessionalFees", "Expense", "12"),
    AccountSpec("70", "Bookkeeper", "Expense", "LegalProfessionalFees", "Expense", "12"),
    AccountSpec("71", "Lawyer", "Expense", "LegalProfessionalFees", "Expense", "12"),
    AccountSpec("72", "Maintenance and Repair", "Expense", "RepairMaintenance", "Expense", None),
    AccountSpec("73", "Building Repairs", "Expense", "RepairMaintenance", "Expense", "72"),
    AccountSpec("74", "Computer Repairs", "Expense", "RepairMaintenance", "Expense", "72"),
    AccountSpec("75", "Equipment Repairs", "Expense", "RepairMaintenance", "Expense", "72"),
    AccountSpec("76", "Gas and Electric", "Expense", "Utilities", "Expense", "24"),
    AccountSpec("77", "Telephone", "Expense", "Utilities", "Expense", "24"),
    AccountSpec("78", "Purchases", "Expense", "SuppliesMaterials", "Expense", None),
    AccountSpec("79", "Sales of Product Income", "Income", "SalesOfProductIncome", "Revenue", None),
    AccountSpec(
        "80", "Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs", "Expense", None
    ),
    AccountSpec("81", "Inventory Asset", "Other Current Asset", "Inventory", "Asset", None),
    AccountSpec("82", "Design income", "Income", "OtherPrimaryIncome", "Revenue", None),
    AccountSpec("83", "Other Income", "Income", "OtherPrimaryIncome", "Revenue", None),
    AccountSpec(
        "84",
        "Accounts Receivable (A/R)",
        "Accounts Receivable",
        "AccountsReceivable",
        "Asset",
        None,
    ),
    AccountSpec("85", "Billable Expense Income", "Income", "ServiceFeeIncome", "Revenue", None),
    AccountSpec("86", "Discounts given", "Income", "DiscountsRefundsGiven", "Revenue", None),
    AccountSpec(
        "87",
        "Unapplied Cash Payment Income",
        "Income",
        "UnappliedCashPaymentIncome",
        "Revenue",
        None,
    ),
    AccountSpec(
        "88",
        "Unapplied Cash Bill Payment Expense",
        "Expense",
        "UnappliedCashBillPaymentExpense",
        "Expense",
        None,
    ),
    AccountSpec(
        "89",
        "Arizona Dept. of Revenue Payable",
        "Other Current Liability",
        "GlobalTaxPayable",
        "Liability",
        None,
    ),
    AccountSpec(
        "90",
        "Board of Equalization Payable",
        "Other Current Liability",
        "GlobalTaxPayable",
        "Liability",
        None,
    ),
)
CUSTOMERS: tuple[PartySpec, ...] = (
    PartySpec(
        "1",
        "Amy's Bird Sanctuary",
        "Amy",
        "Lauterbach",
        "Amy's Bird Sanctuary",
        "Birds@Intuit.com",
        "(650) 555-3311",
        ("2", "4581 Finch St.", "Bayshore", "CA", "94326", "INVALID", "INVALID"),
        parent=None,
        taxable=True,
    ),
    PartySpec(
        "2",
        "Bill's Windsurf Shop",
        "Bill",
        "Lucchini",
        "Bill's Windsurf Shop",
        "Surf@Intuit.com",
        "(415) 444-6538",
        ("3", "12 Ocean Dr.", "Half Moon Bay", "CA", "94213", "37.4307072", "-122.4295234"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "3",
        "Cool Cars",
        "Grace",
        "Pariente",
        "Cool Cars",
        "Cool_Cars@intuit.com",
        "(415) 555-9933",
        ("4", "65 Ocean Dr.", "Half Moon Bay", "CA", "94213", "37.4300318", "-122.4336537"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "4",
        "Diego Rodriguez",
        "Diego",
        "Rodriguez",
        None,
        "Diego@Rodriguez.com",
        "(650) 555-4477",
        ("5", "321 Channing", "Palo Alto", "CA", "94303", "37.443231", "-122.1561846"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "5",
        "Dukes Basketball Camp",
        "Peter",
        "Dukes",
        "Dukes Basketball Camp",
        "Dukes_bball@intuit.com",
        "(520) 420-5638",
        ("6", "25 Court St.", "Tucson", "AZ", "85719", "32.2841116", "-110.9744298"),
        parent=None,
        taxable=True,
    ),
    PartySpec(
        "6",
        "Dylan Sollfrank",
        "Dylan",
        "Sollfrank",
        None,
        None,
        None,
        None,
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "7",
        "Freeman Sporting Goods",
        "Kirby",
        "Freeman",
        "Freeman Sporting Goods",
        "Sporting_goods@intuit.com",
        "(650) 555-0987",
        ("7", "370 Easy St.", "Middlefield", "CA", "94482", "37.4031672", "-122.0642815"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "8",
        "0969 Ocean View Road",
        "Sasha",
        "Tillou",
        "Freeman Sporting Goods",
        "Sporting_goods@intuit.com",
        "(415) 555-9933",
        ("8", "370 Easy St.", "Middlefield", "CA", "94482", "37.4031672", "-122.0642815"),
        parent="7",
        taxable=False,
    ),
    PartySpec(
        "9",
        "55 Twin Lane",
        "Amelia",
        None,
        "Freeman Sporting Goods",
        "Sporting_goods@intuit.com",
        "(650) 555-0987",
        ("9", "370 Easy St.", "Middlefield", "CA", "94482", "37.4031672", "-122.0642815"),
        parent="7",
        taxable=False,
    ),
    PartySpec(
        "10",
        "Geeta Kalapatapu",
        "Geeta",
        "Kalapatapu",
        None,
        "Geeta@Kalapatapu.com",
        "(650) 555-0022",
        ("10", "1987 Main St.", "Middlefield", "CA", "94303", "37.445013", "-122.1391443"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "11",
        "Gevelber Photography",
        "Lisa",
        "Gevelber",
        "Gevelber Photography",
        "Photography@intuit.com",
        "(415) 222-4345",
        ("11", "1045 Main St.", "Half Moon Bay", "CA", "94213", "37.4559621", "-122.429939"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "12",
        "Jeff's Jalopies",
        "Jeff",
        "Chin",
        "Jeff's Jalopies",
        "Jalopies@intuit.com",
        "(650) 555-8989",
        ("12", "12 Willow Rd.", "Menlo Park", "CA", "94305", "37.4495308", "-122.1726923"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "13",
        "John Melton",
        "John",
        "Melton",
        None,
        "John@Melton.com",
        "(650) 555-5879",
        ("13", "85 Pine St.", "Menlo Park", "CA", "94304", "37.4451342", "-122.1409626"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "14",
        "Kate Whelan",
        "Kate",
        "Whelan",
        None,
        "Kate@Whelan.com",
        "(650) 554-8822",
        ("14", "45 First St.", "Menlo Park", "CA", "94304", "37.4585825", "-122.1352789"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "15",
        "Pye's Cakes",
        "Karen",
        "Pye",
        "Pye's Cakes",
        "pyescakes@intuit.com",
        "(973) 555-4652",
        ("15", "350 Mountain View Dr.", "South Orange", "NJ", "07079", "40.7633073", "-74.2426072"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "16",
        "Kookies by Kathy",
        "Kathy",
        "Kuplis",
        "Kookies by Kathy",
        "qbwebsamplecompany@yahoo.com",
        "(650) 555-7896",
        ("16", "789 Sugar Lane", "Middlefield", "CA", "94303", "37.4530553", "-122.1178261"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "17",
        "Mark Cho",
        "Mark",
        "Cho",
        None,
        "Mark@Cho.com",
        "(650) 554-1479",
        ("17", "36 Willow Rd", "Menlo Park", "CA", "94304", "37.450412", "-122.170593"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "18",
        "Paulsen Medical Supplies",
        "Kathy",
        "Paulsen",
        "Paulsen Medical Supplies",
        "Medical@intuit.com",
        "(650) 557-4569",
        ("18", "900 Main St.", "Middlefield", "CA", "94303", "37.445013", "-122.1391443"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "19",
        "Rago Travel Agency",
        "Jeff",
        "Rago",
        "Rago Travel Agency",
        "Rago_Travel@intuit.com",
        "(650) 555-1596",
        ("20", "753 Cedar St.", "Bayshore", "CA", "94326", "37.7077016", "-122.4273232"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "20",
        "Red Rock Diner",
        "Stephanie",
        "Martini",
        "Red Rock Diner",
        "qbwebsamplecompany@yahoo.com",
        "(650) 555-4973",
        ("21", "500 Red Rock Rd.", "Bayshore", "CA", "94326", "INVALID", "INVALID"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "21",
        "Rondonuwu Fruit and Vegi",
        "Rondonuwu",
        "and Vegi",
        None,
        "Tony@Rondonuwu.com",
        "(650) 555-2645",
        ("22", "847 California Ave.", "San Jose", "CA", "95021", "37.3313585", "-121.911372"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "22",
        "Shara Barnett",
        "Shara",
        "Barnett",
        None,
        "Shara@Barnett.com",
        "(650) 555-4563",
        ("23", "77 University", "Palo Alto", "CA", "94303", "37.4431445", "-122.164443"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "23",
        "Barnett Design",
        "Shara",
        "Barnett",
        "Barnett Design",
        "Design@intuit.com",
        "(650) 557-1289",
        ("24", "19 Main St.", "Middlefield", "CA", "94303", "37.445013", "-122.1391443"),
        parent="22",
        taxable=False,
    ),
    PartySpec(
        "24",
        "Sonnenschein Family Store",
        "Russ",
        "Sonnenschein",
        "Sonnenschein Family Store",
        "Familiystore@intuit.com",
        "(650) 557-8463",
        (
            "25",
            "5647 Cypress Hill Ave.",
            "Middlefield",
            "CA",
            "94303",
            "37.4238562",
            "-122.1141681",
        ),
        parent=None,
        taxable=True,  # invoices 100/130 of the captures charge it California tax
    ),
    PartySpec(
        "25",
        "Sushi by Katsuyuki",
        "Katsuyuki",
        "Yanagawa",
        "Sushi by Katsuyuki",
        "Sushi@intuit.com",
        "(505) 570-0147",
        ("26", "898 Elm St.", "Maplewood", "NJ", "07040", "40.7312816", "-74.2652908"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "26",
        "Travis Waldron",
        "Travis",
        "Waldron",
        None,
        "Travis@Waldron.com",
        "(650) 557-9977",
        ("27", "78 First St.", "Monlo Park", "CA", "94304", "37.4585825", "-122.1352789"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "27",
        "Video Games by Dan",
        "Dan",
        "Wilks",
        "Video Games by Dan",
        "Videogames@intuit.com",
        "(650) 555-3456",
        ("28", "202 Main St.", "Tucson", "AZ", "85704", "32.2242351", "-110.9758242"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "28",
        "Wedding Planning by Whitney",
        "Whitney",
        "Brewer",
        "Wedding Planning by Whitney",
        "Dream_Wedding@intuit.com",
        "(650) 557-2473",
        ("29", "135 Broadway", "Menlo Park", "CA", "94304", "37.4846734", "-122.1989488"),
        parent=None,
        taxable=False,
    ),
    PartySpec(
        "29",
        "Weiskopf Consulting",
        "Nicola",
        "Weiskopf",
        "Weiskopf Consulting",
        "Consulting@intuit.com",
        "(650) 555-1423",
        ("30", "45612 Main St.", "Bayshore", "CA", "94326", "45.256574", "-66.0943698"),
        parent=None,
        taxable=False,
    ),
)
VENDORS: tuple[PartySpec, ...] = (
    PartySpec(
        "30",
        "Books by Bessie",
        "Bessie",
        "Williams",
        "Books by Bessie",
        "Books@Intuit.com",
        "(650) 555-7745",
        ("31", "15 Main St.", "Palo Alto", "CA", "94303", "37.445013", "-122.1391443"),
        active=True,
        acct_num="1345",
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "31",
        "Brosnahan Insurance Agency",
        "Nick",
        "Brosnahan",
        "Brosnahan Insurance Agency",
        None,
        "(650) 555-9912",
        ("32", "P.O. Box 5", "Middlefield", "CA", "94482", "43.8249453", "-79.2639122"),
        active=True,
        acct_num="7653412",
        vendor_1099=True,
        term=None,
    ),
    PartySpec(
        "32",
        "Cal Telephone",
        None,
        None,
        "Cal Telephone",
        None,
        "(650) 555-1616",
        ("33", "10 Main St.", "Palo Alto", "CA", "94303", "37.445013", "-122.1391443"),
        active=True,
        acct_num=None,
        vendor_1099=False,
        term="1",
    ),
    PartySpec(
        "33",
        "Chin's Gas and Oil",
        None,
        None,
        "Chin's Gas and Oil",
        None,
        None,
        None,
        active=True,
        acct_num=None,
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "34",
        "Cigna Health Care",
        None,
        None,
        "Cigna Health Care",
        None,
        "(520) 555-9874",
        None,
        active=True,
        acct_num="123456789",
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "35",
        "Computers by Jenni",
        "Jenni",
        "Winslow",
        "Computers by Jenni",
        "Msfixit@Intuit.com",
        "(650) 555-8721",
        ("34", "1515 Main St.", "Middlefield", "CA", "94482", "37.3787808", "-122.1158227"),
        active=True,
        acct_num=None,
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "36",
        "Diego's Road Warrior Bodyshop",
        None,
        None,
        "Diego's Road Warrior Bodyshop",
        None,
        None,
        None,
        active=True,
        acct_num=None,
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "37",
        "EDD",
        None,
        None,
        "EDD",
        None,
        None,
        None,
        active=True,
        acct_num=None,
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "38",
        "Ellis Equipment Rental",
        "Julie",
        "Ellis",
        "Ellis Equipment Rental",
        "Rental@intuit.com",
        "(650) 555-3333",
        ("35", "45896 Main St.", "Middlefield", "CA", "94303", "37.445013", "-122.1391443"),
        active=True,
        acct_num="39765",
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "39",
        "Fidelity",
        None,
        None,
        "Fidelity",
        None,
        None,
        None,
        active=True,
        acct_num=None,
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "40",
        "Hall Properties",
        "Melanie",
        "Hall",
        "Hall Properties",
        None,
        "(973) 555-3827",
        ("36", "P.O.Box 357", "South Orange", "NJ", "07079", "40.7489277", "-74.2609903"),
        active=True,
        acct_num="55642",
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "41",
        "Hicks Hardware",
        "Geoff",
        "Hicks",
        "Hicks Hardware",
        None,
        "(650) 554-1973",
        ("37", "42 Main St.", "Middlefield", "CA", "94303", "37.445013", "-122.1391443"),
        active=True,
        acct_num="556223",
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "42",
        "Lee Advertising",
        "Laurel",
        "Lee",
        "Lee Advertising",
        None,
        "(650) 554-4622",
        ("38", "53 Main St.", "Middlefield", "CA", "94303", "37.445013", "-122.1391443"),
        active=True,
        acct_num="776543",
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "43",
        "Mahoney Mugs",
        None,
        None,
        "Mahoney Mugs",
        None,
        None,
        None,
        active=True,
        acct_num=None,
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "44",
        "Met Life Dental",
        None,
        None,
        "Met Life Dental",
        None,
        None,
        None,
        active=True,
        acct_num=None,
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "45",
        "National Eye Care",
        None,
        None,
        "National Eye Care",
        "Nateyecare@intuit.com, pauliejones15@intuit.com",
        "(800) 555-5555",
        ("39", "123 Anywhere Ave", "Tucson", "AZ", "85704", "32.3477051", "-110.9992777"),
        active=True,
        acct_num="164978565103482659421",
        vendor_1099=False,
        term="3",
    ),
    PartySpec(
        "46",
        "Norton Lumber and Building Materials",
        "Julie",
        "Norton",
        "Norton Lumber and Building Materials",
        "Materials@intuit.com",
        "(650) 363-6578",
        ("40", "4528 Country Road", "Middlefield", "CA", "94303", "37.3752919", "-122.1692159"),
        active=True,
        acct_num="32980256",
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "47",
        "Pam Seitz",
        "Pam",
        "Seitz",
        "Pam Seitz, CPA",
        "SeitzCPA@noemail.com",
        "(650) 557-8855",
        ("41", "P.O. Box 15", "Bayshore", "CA", "94326", "45.2720537", "-79.7935909"),
        active=True,
        acct_num="64132549",
        vendor_1099=False,
        term="1",
    ),
    PartySpec(
        "48",
        "PG&E",
        None,
        None,
        "PG&E",
        "utilities@noemail.com",
        "(888) 555-9465",
        ("42", "4 Main St.", "Palo Alto", "CA", "94303", "37.445013", "-122.1391443"),
        active=True,
        acct_num="00649587213",
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "49",
        "Robertson & Associates",
        "Jenny",
        "Robertson",
        "Robertson & Associates",
        None,
        "(650) 557-1111",
        ("43", "P.O. Box 147", "Bayshore", "CA", "94326", "45.2720537", "-79.7935909"),
        active=True,
        acct_num="000005641",
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "50",
        "Tania's Nursery",
        "Tania",
        "Kronberg",
        "Tania's Nursery",
        "plantqueen@taniasnursery.com",
        "(886) 554-2265",
        ("44", "1111 Elm St.", "Middlefield", "CA", "94482", "37.4604972", "-122.1547528"),
        active=True,
        acct_num="2154",
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "51",
        "Tim Philip Masonry",
        "Tim",
        "Philip",
        "Tim Philip Masonry",
        "tim.philip@timphilipmasonry.com",
        "(800) 556-1254",
        ("45", "3948 Elm St.", "Middlefield", "CA", "94482", "37.4604972", "-122.1547528"),
        active=True,
        acct_num="0078965",
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "52",
        "Tony Rondonuwu",
        "Tony",
        "Rodonuwu",
        None,
        "tonyrjr@intuit.com",
        None,
        None,
        active=True,
        acct_num=None,
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "53",
        "United States Treasury",
        None,
        None,
        None,
        "taxesaregreat@intuit.com",
        "(888) 555-6454",
        ("46", "5568 Capital Drive", "Tucson", "AZ", "85718", "32.3389931", "-110.9268201"),
        active=False,
        acct_num="00000111546",
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "56",
        "Bob's Burger Joint",
        None,
        None,
        None,
        None,
        None,
        None,
        active=True,
        acct_num=None,
        vendor_1099=False,
        term=None,
    ),
    PartySpec(
        "57",
        "Squeaky Kleen Car Wash",
        None,
        None,
        None,
        None,
        None,
        None,
        active=True,
        acct_num=None,
        vendor_1099=False,
        term=None,
    ),
)
ITEMS: tuple[ItemSpec, ...] = (
    ItemSpec("1", "Services", "Service", None, 0, 0, "1", None, None, qty=None, taxable=False),
    ItemSpec("2", "Hours", "Service", None, 0, 0, "1", None, None, qty=None, taxable=False),
    ItemSpec(
        "3",
        "Concrete",
        "Service",
        "Concrete for fountain installation",
        0,
        0,
        "48",
        None,
        None,
        qty=None,
        taxable=True,
    ),
    ItemSpec(
        "4", "Design", "Service", "Custom Design", 75, 0, "82", None, None, qty=None, taxable=False
    ),
    ItemSpec(
        "5",
        "Rock Fountain",
        "Inventory",
        "Rock Fountain",
        275,
        125,
        "79",
        "80",
        "81",
        qty=2,
        taxable=True,
    ),
    ItemSpec(
        "6",
        "Gardening",
        "Service",
        "Weekly Gardening Service",
        0,
        0,
        "45",
        None,
        None,
        qty=None,
        taxable=False,
    ),
    ItemSpec(
        "7",
        "Installation",
        "Service",
        "Installation of landscape design",
        50,
        0,
        "52",
        None,
        None,
        qty=None,
        taxable=False,
    ),
    ItemSpec(
        "8",
        "Lighting",
        "Service",
        "Garden Lighting",
        0,
        0,
        "48",
        None,
        None,
        qty=None,
        taxable=True,
    ),
    ItemSpec(
        "9",
        "Maintenance & Repair",
        "Service",
        "Maintenance & Repair",
        0,
        0,
        "53",
        None,
        None,
        qty=None,
        taxable=False,
    ),
    ItemSpec(
        "10",
        "Pest Control",
        "Service",
        "Pest Control Services",
        35,
        0,
        "54",
        None,
        None,
        qty=None,
        taxable=False,
    ),
    ItemSpec(
        "11", "Pump", "Inventory", "Fountain Pump", 15, 10, "79", "80", "81", qty=25, taxable=True
    ),
    ItemSpec(
        "12",
        "Refunds & Allowances",
        "Service",
        "Income due to refunds or allowances",
        0,
        0,
        "83",
        None,
        None,
        qty=None,
        taxable=False,
    ),
    ItemSpec(
        "13", "Rocks", "Service", "Garden Rocks", 0, 0, "48", None, None, qty=None, taxable=True
    ),
    ItemSpec("14", "Sod", "Service", "Sod", 0, 0, "49", None, None, qty=None, taxable=True),
    ItemSpec(
        "15",
        "Soil",
        "Service",
        "2 cubic ft. bag",
        10,
        6.5,
        "49",
        "66",
        None,
        qty=None,
        taxable=True,
    ),
    ItemSpec(
        "16",
        "Sprinkler Heads",
        "Inventory",
        "Sprinkler Heads",
        2,
        0.75,
        "79",
        "80",
        "81",
        qty=25,
        taxable=True,
    ),
    ItemSpec(
        "17",
        "Sprinkler Pipes",
        "Inventory",
        "Sprinkler Pipes",
        4,
        2.5,
        "79",
        "80",
        "81",
        qty=31,
        taxable=True,
    ),
    ItemSpec(
        "18",
        "Trimming",
        "Service",
        "Tree and Shrub Trimming",
        35,
        0,
        "45",
        None,
        None,
        qty=None,
        taxable=False,
    ),
)

EMPLOYEES: tuple[EmployeeSpec, ...] = (
    EmployeeSpec("54", "John", "Johnson", "(540) 555-9645", "1984-10-02", "2015-09-08", True),
    EmployeeSpec("55", "Emily", "Platt", None, None, None, False),
)

TERMS: tuple[NamedSpec, ...] = (
    NamedSpec("1", "Due on receipt", 0),
    NamedSpec("2", "Net 15", 15),
    NamedSpec("3", "Net 30", 30),
    NamedSpec("4", "Net 60", 60),
)
"""Terms with their DueDays."""

PAYMENT_METHODS: tuple[NamedSpec, ...] = (
    NamedSpec("1", "Cash", "NON_CREDIT_CARD"),
    NamedSpec("2", "Check", "NON_CREDIT_CARD"),
    NamedSpec("3", "Visa", "CREDIT_CARD"),
    NamedSpec("4", "MasterCard", "CREDIT_CARD"),
    NamedSpec("5", "Discover", "CREDIT_CARD"),
    NamedSpec("6", "American Express", "CREDIT_CARD"),
    NamedSpec("7", "Diners Club", "CREDIT_CARD"),
)
"""Payment methods with their Type."""

CLASSES: tuple[NamedSpec, ...] = (
    NamedSpec("5000000000000007280", "Landscaping"),
    NamedSpec("5000000000000007281", "Design"),
    NamedSpec("5000000000000007282", "Maintenance"),
    NamedSpec("5000000000000007283", "Retail", active=False),
)

DEPARTMENTS: tuple[NamedSpec, ...] = (
    NamedSpec("1", "Half Moon Bay"),
    NamedSpec("2", "Middlefield"),
    NamedSpec("3", "Tucson", active=False),
)

CUSTOMER_TYPES: tuple[NamedSpec, ...] = (
    NamedSpec("1", "Commercial"),
    NamedSpec("2", "Residential"),
)

TAX_AGENCIES: tuple[NamedSpec, ...] = (
    NamedSpec("1", "Arizona Dept. of Revenue", "89"),
    NamedSpec("2", "Board of Equalization", "90"),
)
"""Tax agencies with the liability account their collected tax posts to."""


class TaxRateSpec(NamedTuple):
    """A sales tax rate collected for an agency."""

    id: str
    name: str
    rate: float | int
    agency: str


TAX_RATES: tuple[TaxRateSpec, ...] = (
    TaxRateSpec("1", "AZ State tax", 7.1, "1"),
    TaxRateSpec("2", "Tucson City", 2, "1"),
    TaxRateSpec("3", "California", 8, "2"),
)


class TaxCodeSpec(NamedTuple):
    """A tax code: a group of rates, or the US pseudo codes TAX and NON."""

    id: str
    name: str
    description: str
    rates: tuple[str, ...]
    taxable: bool


TAX_CODES: tuple[TaxCodeSpec, ...] = (
    TaxCodeSpec("2", "California", "California", ("3",), True),
    TaxCodeSpec("3", "Tucson", "Tucson", ("1", "2"), True),
    TaxCodeSpec("TAX", "TAX", "TAX", (), True),
    TaxCodeSpec("NON", "NON", "NON", (), False),
)

DEFAULT_TAX_CODE = "2"
"""The company's sales tax group (Preferences.TaxPrefs.TaxGroupCodeRef): California, 8%."""

CURRENCIES: tuple[NamedSpec, ...] = (
    NamedSpec("1", "EUR", "Euro"),
    NamedSpec("2", "CAD", "Canadian Dollar"),
    NamedSpec("3", "GBP", "British Pound Sterling"),
)
"""Foreign currencies (CompanyCurrency: Code, Name); the home currency is USD."""

HOME_CURRENCY = ("USD", "United States Dollar")

TRANSACTION_COUNTS: dict[str, int] = {
    "Invoice": 31,
    "Payment": 16,
    "Bill": 15,
    "BillPayment": 10,
    "Purchase": 34,
    "Estimate": 4,
    "SalesReceipt": 4,
    "Deposit": 5,
    "JournalEntry": 3,
    "PurchaseOrder": 3,
    "CreditMemo": 1,
    "RefundReceipt": 1,
    "VendorCredit": 1,
    "Transfer": 1,
    "CreditCardPayment": 1,
    "InventoryAdjustment": 1,
    "TimeActivity": 2,
    "ReimburseCharge": 1,
    "TaxPayment": 1,
}
"""Transactions of the sample company: the captured counts for the big five (31 invoices, 16
payments, 15 bills, 10 bill payments, 34 purchases), the genuine (non-test) records of the
captures for the rest, and one of each entity the captures do not show."""

DEFAULT_TRANSACTIONS = sum(TRANSACTION_COUNTS.values())
"""How many transactions the default company has."""

NAME_LIST_COUNTS: dict[str, int] = {
    "Account": 89,
    "Customer": 29,
    "Vendor": 26,
    "Employee": 2,
    "Item": 18,
}
"""Name-list counts of the sample company at default scale, active and inactive together."""
