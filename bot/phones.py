"""Phone numbers as stored and searched: E.164."""

from __future__ import annotations

import phonenumbers


def normalise_phone(raw: str) -> str:
    """E.164, or raise ValueError with a user message."""
    try:
        num = phonenumbers.parse(raw.strip(), "US")
    except phonenumbers.NumberParseException:
        raise ValueError("That is not a phone number. Use digits, like (617) 555-0123.") from None
    if not phonenumbers.is_valid_number(num):
        raise ValueError("That phone number is not valid. Check the digits and area code.")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def display_phone(e164: str) -> str:
    """How a coordinator reads a stored number: national format for US numbers ("(617) 555-0123"),
    international otherwise; the stored text as is when it does not parse."""
    try:
        num = phonenumbers.parse(e164, "US")
    except phonenumbers.NumberParseException:
        return e164
    fmt = (phonenumbers.PhoneNumberFormat.NATIONAL if num.country_code == 1
           else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(num, fmt)
