"""Read a small business's invoices from CSV and say who owes what.

The CSV has one invoice a row: number, customer, amount in cents, issued and due dates
(YYYY-MM-DD) and whether it is paid ("yes"/"no").
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Invoice:
    number: str
    customer: str
    cents: int
    issued: date
    due: date
    paid: bool


def parse_row(row: dict[str, str]) -> Invoice:
    """One CSV row as an Invoice; ValueError names the field that is wrong."""
    try:
        cents = int(row["amount_cents"])
    except ValueError:
        raise ValueError(f"invoice {row['number']}: amount {row['amount_cents']!r} is not a number")
    return Invoice(
        number=row["number"],
        customer=row["customer"].strip(),
        cents=cents,
        issued=date.fromisoformat(row["issued"]),
        due=date.fromisoformat(row["due"]),
        paid=row["paid"].strip().lower() == "yes",
    )


def read_invoices(path: str) -> list[Invoice]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [parse_row(row) for row in csv.DictReader(handle)]


def days_overdue(invoice: Invoice, today: date) -> int:
    """How many days past its due date an unpaid invoice is (0 when paid or not yet due)."""
    if invoice.paid or today <= invoice.due:
        return 0
    return (today - invoice.due).days


def owed_by_customer(invoices: list[Invoice]) -> dict[str, int]:
    """Unpaid cents per customer, largest debt first."""
    owed: dict[str, int] = defaultdict(int)
    for invoice in invoices:
        if not invoice.paid:
            owed[invoice.customer] += invoice.cents
    return dict(sorted(owed.items(), key=lambda item: item[1], reverse=True))


def format_cents(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


def report(invoices: list[Invoice], today: date) -> str:
    lines = [f"{len(invoices)} invoices, as of {today.isoformat()}"]
    for customer, cents in owed_by_customer(invoices).items():
        lines.append(f"  {customer:<24} owes {format_cents(cents):>12}")
    late = [invoice for invoice in invoices if days_overdue(invoice, today) > 30]
    if late:
        lines.append(f"{len(late)} invoices more than 30 days overdue:")
        for invoice in sorted(late, key=lambda invoice: invoice.due):
            days = days_overdue(invoice, today)
            lines.append(f"  #{invoice.number} {invoice.customer}: {days} days")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(read_invoices(sys.argv[1]), date.today()))
