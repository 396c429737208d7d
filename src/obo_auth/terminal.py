"""Text a terminal only displays: neutral ground for everything that prints values it did not
write (audit records, a model's names, paths of files being checked)."""

from __future__ import annotations


def printable(value: object) -> str:
    """``value`` as text a terminal only displays: every character that is not printable (C0
    and C1 controls such as ESC, DEL, line and paragraph separators, bidi and other format
    characters) is shown as its Python escape, e.g. ESC as the four characters ``\\x1b``."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
