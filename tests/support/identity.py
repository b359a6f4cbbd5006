from __future__ import annotations


def luhn_digit(nine: str) -> str:
    """An independent Luhn: double every other digit counted from the right."""
    total = 0
    for position, char in enumerate(reversed(nine)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += sum(divmod(value, 10))
    return str(-total % 10)
