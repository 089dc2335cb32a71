"""schemathesis hooks for the receipts services (loaded through SCHEMATHESIS_HOOKS by the fuzz test).

A receipt has rules that JSON Schema cannot state, so the OpenAPI document states them in words: the total
equals the sum of the line amounts (quantity x price rounded to cents, half away from zero) within 0.01,
VAT is not more than the total, the purchase time lies between 2000-01-01 and ten minutes from now, and no
text nor key of an extra field holds U+0000 at any depth; a time series asks for at most 1000 buckets. For a receipt schemathesis generates as valid, these hooks make it meet those rules too,
as a client would; they also write each generated amount with its decimals (a float such as
0.5700000000000001, which the generator makes of 57 x 0.01, is sent as 0.57). `positive_data_acceptance`
stays strict: a valid receipt the producer refuses is a failure. Generated invalid requests are left alone.
"""

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import schemathesis
from hypothesis.internal import lambda_sources

# CPython 3.11.7 (this machine's) can fail the `ast.parse` with which Hypothesis describes a lambda inside a
# deeply nested strategy, with "SystemError: AST constructor recursion depth mismatch" (fixed in later
# CPython releases). The description only labels the strategy, so such a lambda is labelled plainly.
_describe_lambda = lambda_sources.lambda_description


def _lambda_description(function):
    try:
        return _describe_lambda(function)
    except SystemError:
        return "lambda: <description unavailable>"


lambda_sources.lambda_description = _lambda_description

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
CENT = Decimal("0.01")
GRAM = Decimal("0.001")
LARGEST_TOTAL = Decimal("9999999999999.99")


def _written(original, value):
    """The amount as the client wrote the original: a JSON number or a numeric string."""
    return str(value) if isinstance(original, str) else float(value)


def _amount(value, step):
    try:
        return Decimal(str(value).strip()).quantize(step, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return None


def _within_window(text):
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return EARLIEST <= moment <= datetime.now(timezone.utc) + timedelta(minutes=9)


def _without_nul(value):
    if isinstance(value, dict):
        return {key.replace("\x00", ""): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, str):
        return value.replace("\x00", "")
    return value


def _fit_receipt(receipt):
    if not isinstance(receipt, dict) or not isinstance(receipt.get("items"), list):
        return receipt
    receipt = _without_nul(receipt)
    if not _within_window(receipt.get("timestamp")):
        receipt["timestamp"] = "2024-02-07T12:34:56Z"
    total = Decimal("0")
    for item in receipt["items"]:
        quantity, price = _amount(item.get("quantity"), GRAM), _amount(item.get("price"), CENT)
        if quantity is None or price is None or quantity <= 0:
            return receipt
        if quantity * price > LARGEST_TOTAL / len(receipt["items"]):
            quantity, price = Decimal("1.000"), min(price, Decimal("100.00"))
        item["quantity"] = _written(item["quantity"], quantity)
        item["price"] = _written(item["price"], price)
        total += (quantity * price).quantize(CENT, rounding=ROUND_HALF_UP)
    receipt["total_amount"] = _written(receipt.get("total_amount"), total)
    vat = _amount(receipt.get("vat_amount"), CENT)
    receipt["vat_amount"] = _written(receipt.get("vat_amount"), min(vat, total) if vat is not None else total)
    if receipt.get("tips_amount") is not None:
        tips = _amount(receipt["tips_amount"], CENT)
        if tips is not None:
            receipt["tips_amount"] = _written(receipt["tips_amount"], tips)
    return receipt


def _moment(text):
    """A period bound as the consumer reads it (a date is midnight UTC), or None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _fit_series(query):
    """A time series holds at most 1000 buckets: a period asking for more is cut to 100 buckets."""
    if not isinstance(query, dict):
        return
    step = timedelta(hours=1) if query.get("bucket") == "hour" else timedelta(days=1)
    start, end = _moment(query.get("from")), _moment(query.get("to"))
    if query.get("from") and start is None:
        # A start Python cannot read (the year 0, which the consumer accepts): ask for one known day instead.
        query["from"], query["to"] = "2024-01-01", "2024-01-02"
        return
    if start is None:
        return
    end = end or max(start, datetime.now(timezone.utc))
    if (end - start) / step > 999:
        try:
            query["to"] = (start + 100 * step).isoformat()
        except OverflowError:
            query["from"] = query["to"] = "2024-01-01"


@schemathesis.hook
def before_call(context, case, kwargs):
    meta = case.meta
    positive = meta is not None and meta.generation.mode.is_positive
    if positive and case.method.upper() == "POST" and case.path == "/api/checks/":
        case.body = _fit_receipt(case.body)
    if positive and case.path == "/api/analytics/timeseries/":
        _fit_series(case.query)
