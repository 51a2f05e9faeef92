"""Account ids masked for whatever a person or a log sees: the settings, log lines, error messages, CLI output.

It must never return an account id in full, and never import the settings (logging uses it before they load).
"""

from __future__ import annotations

import re

_ACCOUNT_RE = re.compile(r"\b(DU|DF|U|F|I)(\d{3,})(\d{3})\b")


def mask_account(account: str) -> str:
    """DU1234567 -> DU****567: enough to tell accounts apart, not enough to use one."""
    if len(account) <= 5:
        return "*" * len(account)
    return account[:2] + "*" * (len(account) - 5) + account[-3:]


def mask_secrets(text: str) -> str:
    """Mask every IB account id that appears in free text (log lines, error messages, CLI output)."""
    return _ACCOUNT_RE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)
