"""Files of a channel simulator's sandbox account: written once, mode 0600, under a lock.

Every channel keeps its sandbox under `<sandbox_dir>/<channel>/`: a credential bundle a routing
config can name, plus the channel's own keys. What is generated differs per channel; how the
files are locked, written and read back does not, and lives here.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ValidationError

from channels.credentials import CredentialsBase, CredentialsError, describe_validation_error
from channels.rsa import load_private_key, private_key_pem, public_key_pem

_Model = TypeVar("_Model", bound=BaseModel)
_Bundle = TypeVar("_Bundle", bound=CredentialsBase)


def new_rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key, the size every channel uses."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (created if missing) for the block.

    Concurrent first starts (several simulators, tests in parallel) would otherwise each
    generate an account and overwrite each other's keys.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write_secret(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600, atomically (no reader sees half a key)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def write_bundle(path: Path, bundle: dict[str, str]) -> None:
    """Write a credential bundle as indented JSON, as `write_secret` does."""
    write_secret(path, json.dumps(bundle, indent=2) + "\n")


def read_bundle_file(bundle_file: Path, model: type[_Model]) -> _Model:
    """The credential bundle in `bundle_file`, validated as `model`. Raises `CredentialsError`."""
    try:
        data = json.loads(bundle_file.read_text(encoding="utf-8"))
        return model.model_validate(data)
    except (OSError, json.JSONDecodeError) as exc:
        raise CredentialsError(f"sandbox file {bundle_file}: unreadable ({exc})") from None
    except ValidationError as exc:
        raise describe_validation_error(f"sandbox file {bundle_file}", exc) from None


def ensure_key_pair(
    bundle_file: Path,
    key_file: Path,
    model: type[_Bundle],
    generate: Callable[[], tuple[_Bundle, rsa.RSAPrivateKey]],
    public_half: Callable[[_Bundle], rsa.RSAPublicKey],
    read_key: Callable[[str], rsa.RSAPrivateKey] = load_private_key,
) -> tuple[_Bundle, rsa.RSAPrivateKey]:
    """A sandbox account of a merchant bundle and the channel's own private key.

    On first use `generate` makes both and they are written (under the folder's lock, never
    over an existing file); every start reads them back and checks that the bundle holds
    `public_half` of the channel's key, since a folder with one file replaced would make
    every signature fail. Raises `CredentialsError`.
    """
    with locked(bundle_file.parent):
        if not bundle_file.exists() and not key_file.exists():
            credentials, key = generate()
            write_secret(key_file, private_key_pem(key))
            write_bundle(bundle_file, credentials.bundle())
    credentials = read_bundle_file(bundle_file, model)
    try:
        key = read_key(key_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"sandbox file {key_file}: unreadable ({exc})") from None
    if public_key_pem(public_half(credentials)) != public_key_pem(key.public_key()):
        raise CredentialsError(
            f"sandbox files {bundle_file.name} and {key_file.name} do not belong together; "
            f"remove both to generate a new sandbox account"
        )
    return credentials, key
