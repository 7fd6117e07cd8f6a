"""How numbers are shown to people: dollars, p-values, counts and file sizes; one formatter each, used by every view.

Records keep plain JSON numbers; these only shape what a person reads on stderr, in tables and reports.
"""

from __future__ import annotations

from decimal import Decimal

USD_DIGITS = 9
"""Dollar amounts are shown to a billionth of a dollar: below that a float's own noise begins."""
P_FLOOR = 0.001


def usd(value: float | None) -> str:
    """Dollars exactly and plainly: fixed point, never an exponent, every significant digit to a billionth
    of a dollar, at least cents (``$0.000054``, ``$0.00185``, ``$1.50``, ``$0.00``); ``unknown`` for an
    unknown cost (a model without a price is never shown as free)."""
    if value is None:
        return "unknown"
    amount = Decimal(str(round(float(value), USD_DIGITS))) + 0  # + 0 turns -0 into 0
    whole, _, fraction = f"{amount:f}".partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def p_value(p: float | None) -> str:
    """A p-value to three decimals, or ``<0.001`` below that (never in scientific notation)."""
    if p is None:
        return ""
    return f"<{P_FLOOR}" if p < P_FLOOR else f"{p:.3f}"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun that agrees with it: ``1 call``, ``3 calls``, ``1 reply``, ``2 replies``."""
    if n == 1:
        return f"{n} {noun}"
    if plural is None:
        plural = noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"
    return f"{n} {plural}"


def file_size(n: int) -> str:
    """Bytes as people read them: ``812 bytes``, ``24.0 KiB``, ``3.5 MiB``, ``1.2 GiB``."""
    if n < 1024:
        return count(n, "byte")
    value, unit = n / 1024, "KiB"
    for larger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:.1f} {unit}"
