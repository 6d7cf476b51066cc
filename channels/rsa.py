"""RSA keys and SHA256withRSA (PKCS#1 v1.5) signatures shared by the channels. No I/O.

All three channels sign with the same primitive; what each signs (and how it is framed on the
wire) stays in the channel's own `crypto` module.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM (PKCS#8 or PKCS#1). Raises `ValueError`."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("not a PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM (SubjectPublicKeyInfo). Raises `ValueError`."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise ValueError("not a PEM public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    """PKCS#8 PEM, unencrypted (the form WeChat hands out as `apiclient_key.pem`)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_key_pem(key: rsa.RSAPublicKey) -> str:
    """SubjectPublicKeyInfo PEM."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    """Base64 SHA256withRSA (PKCS#1 v1.5) signature of `message`."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    """Whether base64 `signature` is `key`'s SHA256withRSA signature of `message`.

    Malformed base64 counts as a bad signature: callers only need yes or no.
    """
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
