"""The simulator's contract table: US stocks and ETFs on SMART/USD with conIds, ticks, hours and walk parameters.

Pure data and lookups. It must never invent a contract for an unknown symbol on lookup: the server answers
those with error 200, as a real Gateway does (replay files add theirs explicitly via `replay_contract`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from procs.gateway_sim.market_hours import hours_strings, shifted_hours


@dataclass(frozen=True, slots=True)
class SimContract:
    con_id: int
    symbol: str
    sec_type: str = "STK"
    exchange: str = "SMART"
    primary_exchange: str = "NASDAQ"
    currency: str = "USD"
    min_tick: Decimal = Decimal("0.01")
    long_name: str = ""
    industry: str = ""
    time_zone_id: str = "US/Eastern"
    trading_hours: str = ""  # IB's format, filled by find_contract for the sessions from `now`
    liquid_hours: str = ""
    start_price: float = 100.0
    daily_vol: float = 0.02
    avg_daily_volume: int = 10_000_000
    # the derivative and FX fields of IB's contract; empty for a stock (holdings.py makes OPT and CASH ones)
    last_trade_date: str = ""  # YYYYMMDD
    strike: float = 0.0
    right: str = ""  # C / P
    multiplier: str = ""
    local_symbol: str = ""  # empty: the symbol (IB's localSymbol of a US stock)
    trading_class: str = ""  # empty: IB's usual one for a stock (wire.trading_class)
    isin: str = ""  # the security-id list of the contract details (REAL_ISINS, else synthetic_isin)


# symbol | conId | primary exchange | start price | daily vol | avg daily volume | long name | industry
# conIds of the best-known names are IB's real ones; the 9xxxxxxx ones are made up (unique and stable).
_TABLE = """
AAPL|265598|NASDAQ|230|0.016|55000000|APPLE INC|Technology
MSFT|272093|NASDAQ|420|0.015|22000000|MICROSOFT CORP|Technology
AMZN|3691937|NASDAQ|200|0.020|40000000|AMAZON.COM INC|Communications
NVDA|4815747|NASDAQ|140|0.030|250000000|NVIDIA CORP|Technology
GOOGL|208813719|NASDAQ|170|0.018|30000000|ALPHABET INC-CL A|Communications
GOOG|208813720|NASDAQ|172|0.018|20000000|ALPHABET INC-CL C|Communications
META|107113386|NASDAQ|580|0.022|15000000|META PLATFORMS INC-CLASS A|Communications
TSLA|76792991|NASDAQ|250|0.035|90000000|TESLA INC|Consumer, Cyclical
AMD|4391|NASDAQ|150|0.030|45000000|ADVANCED MICRO DEVICES|Technology
INTC|270639|NASDAQ|25|0.025|60000000|INTEL CORP|Technology
IBM|8314|NYSE|220|0.013|4000000|INTL BUSINESS MACHINES CORP|Technology
NFLX|90000001|NASDAQ|700|0.022|4000000|NETFLIX INC|Communications
AVGO|90000002|NASDAQ|170|0.028|25000000|BROADCOM INC|Technology
ADBE|90000003|NASDAQ|500|0.020|3000000|ADOBE INC|Technology
CSCO|90000004|NASDAQ|55|0.013|18000000|CISCO SYSTEMS INC|Communications
COST|90000005|NASDAQ|900|0.012|2000000|COSTCO WHOLESALE CORP|Consumer, Non-cyclical
PEP|90000006|NASDAQ|160|0.010|6000000|PEPSICO INC|Consumer, Non-cyclical
QCOM|90000007|NASDAQ|165|0.022|8000000|QUALCOMM INC|Technology
TXN|90000008|NASDAQ|195|0.017|5500000|TEXAS INSTRUMENTS INC|Technology
AMAT|90000009|NASDAQ|180|0.025|7000000|APPLIED MATERIALS INC|Technology
MU|90000010|NASDAQ|100|0.030|20000000|MICRON TECHNOLOGY INC|Technology
PYPL|90000011|NASDAQ|75|0.022|12000000|PAYPAL HOLDINGS INC|Financial
SBUX|90000012|NASDAQ|95|0.017|9000000|STARBUCKS CORP|Consumer, Cyclical
INTU|90000013|NASDAQ|640|0.018|1500000|INTUIT INC|Technology
AMGN|90000014|NASDAQ|300|0.014|2500000|AMGEN INC|Consumer, Non-cyclical
CMCSA|90000015|NASDAQ|40|0.015|20000000|COMCAST CORP-CLASS A|Communications
PLTR|90000016|NASDAQ|60|0.040|70000000|PALANTIR TECHNOLOGIES INC-A|Technology
JPM|90000017|NYSE|230|0.014|9000000|JPMORGAN CHASE & CO|Financial
BAC|90000018|NYSE|44|0.016|35000000|BANK OF AMERICA CORP|Financial
WFC|90000019|NYSE|70|0.017|16000000|WELLS FARGO & CO|Financial
GS|90000020|NYSE|560|0.017|2200000|GOLDMAN SACHS GROUP INC|Financial
MS|90000021|NYSE|125|0.017|6000000|MORGAN STANLEY|Financial
V|90000022|NYSE|300|0.012|6500000|VISA INC-CLASS A SHARES|Financial
MA|90000023|NYSE|510|0.012|2800000|MASTERCARD INC - A|Financial
JNJ|90000024|NYSE|155|0.010|7000000|JOHNSON & JOHNSON|Consumer, Non-cyclical
PG|90000025|NYSE|170|0.010|6500000|PROCTER & GAMBLE CO/THE|Consumer, Non-cyclical
KO|90000026|NYSE|65|0.009|13000000|COCA-COLA CO/THE|Consumer, Non-cyclical
XOM|90000027|NYSE|115|0.014|15000000|EXXON MOBIL CORP|Energy
CVX|90000028|NYSE|155|0.015|7500000|CHEVRON CORP|Energy
WMT|90000029|NYSE|85|0.011|15000000|WALMART INC|Consumer, Cyclical
HD|90000030|NYSE|400|0.013|3500000|HOME DEPOT INC|Consumer, Cyclical
DIS|90000031|NYSE|110|0.016|9000000|WALT DISNEY CO/THE|Communications
BA|90000032|NYSE|160|0.022|8000000|BOEING CO/THE|Industrial
CAT|90000033|NYSE|380|0.017|2500000|CATERPILLAR INC|Industrial
MCD|90000034|NYSE|295|0.010|3200000|MCDONALD'S CORP|Consumer, Cyclical
NKE|90000035|NYSE|75|0.020|11000000|NIKE INC -CL B|Consumer, Cyclical
PFE|90000036|NYSE|26|0.014|35000000|PFIZER INC|Consumer, Non-cyclical
MRK|90000037|NYSE|100|0.013|9000000|MERCK & CO. INC.|Consumer, Non-cyclical
UNH|90000038|NYSE|560|0.016|3500000|UNITEDHEALTH GROUP INC|Consumer, Non-cyclical
T|90000039|NYSE|22|0.012|30000000|AT&T INC|Communications
VZ|90000040|NYSE|42|0.011|18000000|VERIZON COMMUNICATIONS INC|Communications
ORCL|90000041|NYSE|170|0.020|9000000|ORACLE CORP|Technology
CRM|90000042|NYSE|300|0.020|6000000|SALESFORCE INC|Technology
UBER|90000043|NYSE|70|0.025|18000000|UBER TECHNOLOGIES INC|Communications
F|90000044|NYSE|11|0.020|50000000|FORD MOTOR CO|Consumer, Cyclical
GE|90000045|NYSE|175|0.018|5000000|GE AEROSPACE|Industrial
SPY|756733|ARCA|580|0.010|60000000|SPDR S&P 500 ETF TRUST|ETF
QQQ|320227571|NASDAQ|500|0.013|35000000|INVESCO QQQ TRUST SERIES 1|ETF
IWM|9579970|ARCA|220|0.014|30000000|ISHARES RUSSELL 2000 ETF|ETF
DIA|90000046|ARCA|430|0.009|3000000|SPDR DOW JONES INDUSTRIAL AVRG ETF|ETF
VOO|90000047|ARCA|530|0.010|5000000|VANGUARD S&P 500 ETF|ETF
VTI|90000048|ARCA|285|0.010|3500000|VANGUARD TOTAL STOCK MKT ETF|ETF
GLD|90000049|ARCA|245|0.010|8000000|SPDR GOLD SHARES|ETF
SLV|90000050|ARCA|28|0.018|20000000|ISHARES SILVER TRUST|ETF
TLT|90000051|NASDAQ|92|0.009|35000000|ISHARES 20+ YEAR TREASURY BD|ETF
HYG|90000052|ARCA|79|0.003|30000000|ISHARES IBOXX HIGH YLD CORP|ETF
EEM|90000053|ARCA|44|0.012|25000000|ISHARES MSCI EMERGING MARKETS|ETF
EFA|90000054|ARCA|80|0.010|15000000|ISHARES MSCI EAFE ETF|ETF
XLF|90000055|ARCA|48|0.012|40000000|FINANCIAL SELECT SECTOR SPDR|ETF
XLE|90000056|ARCA|90|0.014|15000000|ENERGY SELECT SECTOR SPDR|ETF
XLK|90000057|ARCA|230|0.014|6000000|TECHNOLOGY SELECT SECT SPDR|ETF
XLV|90000058|ARCA|145|0.009|8000000|HEALTH CARE SELECT SECTOR|ETF
SMH|90000059|NASDAQ|250|0.022|7000000|VANECK SEMICONDUCTOR ETF|ETF
ARKK|90000060|ARCA|55|0.028|12000000|ARK INNOVATION ETF|ETF
USO|90000061|ARCA|75|0.020|4000000|UNITED STATES OIL FUND LP|ETF
"""


# ISINs of the best-known names: the issuers' real ones, as printed on their SEC filings (the cover page of each
# 10-K / N-1A names the CUSIP; the ISIN is US + CUSIP + check digit). Every other contract gets synthetic_isin.
REAL_ISINS = {
    "AAPL": "US0378331005",
    "MSFT": "US5949181045",
    "AMZN": "US0231351067",
    "NVDA": "US67066G1040",
    "GOOGL": "US02079K3059",
    "GOOG": "US02079K1079",
    "META": "US30303M1027",
    "TSLA": "US88160R1014",
    "AMD": "US0079031078",
    "INTC": "US4581401001",
    "IBM": "US4592001014",
    "SPY": "US78462F1030",
    "QQQ": "US46090E1038",
    "IWM": "US4642876555",
}


def isin_check_digit(body: str) -> str:
    """ISO 6166's check digit of the first 11 characters: letters become 10..35, then Luhn over the digits."""
    digits = "".join(str(int(ch, 36)) for ch in body.upper())
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return str((10 - total % 10) % 10)


def synthetic_isin(symbol: str) -> str:
    """A valid-format ISIN that is NOT the security's real one: US, 'SIM', six digits from the symbol, and a correct
    check digit, so a client that validates ISINs accepts it and a reader sees at once that it is made up."""
    digest = int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=4).digest(), "big")
    body = f"USSIM{digest % 1_000_000:06d}"
    return body + isin_check_digit(body)


def _parse_table(text: str) -> dict[str, SimContract]:
    table: dict[str, SimContract] = {}
    for line in text.strip().splitlines():
        symbol, con_id, primary, price, vol, adv, long_name, industry = line.split("|")
        table[symbol] = SimContract(
            con_id=int(con_id),
            symbol=symbol,
            primary_exchange=primary,
            start_price=float(price),
            daily_vol=float(vol),
            avg_daily_volume=int(adv),
            long_name=long_name,
            industry=industry,
            isin=REAL_ISINS.get(symbol) or synthetic_isin(symbol),
        )
    return table


DEFAULT_CONTRACTS: dict[str, SimContract] = _parse_table(_TABLE)


def with_hours(contract: SimContract, now: datetime | None = None, shift_ns: int = 0) -> SimContract:
    """The contract with IB's trading/liquid hours strings for the week starting at `now` (default: wall clock);
    with `shift_ns` (wall-clock mode) `now` is the price path's time and the hours are its session's, moved."""
    moment = now or datetime.now(UTC)
    trading, liquid = shifted_hours(moment, shift_ns) if shift_ns else hours_strings(moment)
    return dataclasses.replace(contract, trading_hours=trading, liquid_hours=liquid)


def find_contract(
    symbol: str,
    sec_type: str = "STK",
    currency: str = "USD",
    exchange: str = "SMART",
    *,
    local_symbol: str = "",
    now: datetime | None = None,
    shift_ns: int = 0,
    table: Mapping[str, SimContract] | None = None,
) -> SimContract | None:
    """The contract a reqContractDetails for these fields resolves to, hours filled for `now`; None => error 200.

    By symbol or by localSymbol (how NautilusTrader asks for AAPL.NASDAQ: localSymbol, secType, SMART and the
    primary exchange), both when both are given. Empty fields match anything, as on IB; `exchange` may be SMART
    or the primary exchange. The query's primaryExchange is not checked: clients name NASDAQ's differently
    (NASDAQ, ISLAND) and a Gateway resolves either.
    """
    contracts = DEFAULT_CONTRACTS if table is None else table
    contract = contracts.get(symbol.upper()) if symbol else _by_local_symbol(local_symbol, contracts)
    if contract is None:
        return None
    if local_symbol and local_symbol.upper() != (contract.local_symbol or contract.symbol).upper():
        return None
    if sec_type not in ("", contract.sec_type) or currency not in ("", contract.currency):
        return None
    if exchange not in ("", contract.exchange, contract.primary_exchange):
        return None
    return with_hours(contract, now, shift_ns)


def _by_local_symbol(local_symbol: str, table: Mapping[str, SimContract]) -> SimContract | None:
    wanted = local_symbol.upper()
    if not wanted:
        return None
    contract = table.get(wanted)  # a US stock's localSymbol is its symbol
    if contract is not None and (contract.local_symbol or contract.symbol).upper() == wanted:
        return contract
    return next((c for c in table.values() if c.local_symbol.upper() == wanted), None)


def contract_by_con_id(
    con_id: int,
    *,
    now: datetime | None = None,
    shift_ns: int = 0,
    table: Mapping[str, SimContract] | None = None,
) -> SimContract | None:
    """The contract with this conId, hours filled for `now` (and `shift_ns`, see with_hours); None when unknown."""
    for contract in (DEFAULT_CONTRACTS if table is None else table).values():
        if contract.con_id == con_id:
            return with_hours(contract, now, shift_ns)
    return None


def replay_contract(symbol: str, first_price: float) -> SimContract:
    """A contract for a replay-file symbol missing from the table; its conId is stable across runs."""
    digest = int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=4).digest(), "big")
    return SimContract(
        con_id=800_000_000 + digest % 100_000_000,
        symbol=symbol,
        primary_exchange="NYSE",
        long_name=f"{symbol} (REPLAY)",
        start_price=first_price,
        isin=synthetic_isin(symbol),
    )
