"""Numbers written for people: byte counts in binary units, counts in SI units (for tables)."""
import pandas as pd


def format_bytes(n):
    """A byte count in binary units: 512 -> '512 B', 1536 -> '1.50 KiB', None -> 'n/a'."""
    if n is None or pd.isna(n):
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} B" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def format_count(n):
    """A count in SI units to 3 significant digits: 224 -> '224', 1_992_166 -> '1.99 M'."""
    if n is None or pd.isna(n):
        return "n/a"
    for unit in ("", " k", " M", " G"):
        if abs(n) < 999.5:
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g} T"
