"""Statement downloads every simulator serves the same way: a random token per issued file."""

from __future__ import annotations

import random
import string
from typing import Generic, TypeVar

B = TypeVar("B")

_ALPHABET = string.ascii_letters + string.digits


class BillDesk(Generic[B]):
    """Issued download tokens and their files (kept for the simulator's life).

    The token is drawn from the simulator's seeded generator, so a seeded run hands out the
    same download URLs; `token_length` follows the channel's own URLs.
    """

    def __init__(self, rng: random.Random, token_length: int) -> None:
        self._rng = rng
        self._token_length = token_length
        self._bills: dict[str, B] = {}

    def issue(self, bill: B) -> str:
        token = "".join(self._rng.choice(_ALPHABET) for _ in range(self._token_length))
        self._bills[token] = bill
        return token

    def get(self, token: str) -> B | None:
        return self._bills.get(token)
