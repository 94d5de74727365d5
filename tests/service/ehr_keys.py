"""A test EHR: key pairs generated in the test, its JWK Set, and the JWTs it signs for CDS Hooks calls."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://ehr.test.invalid"


@dataclass
class EhrKeys:
    """An EHR with an ES384 and an RS384 key pair (kids ``ec-1`` and ``rsa-1``)."""

    iss: str = ISSUER
    private: dict[str, Any] = field(default_factory=dict)
    public_jwks: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.add_key("ec-1", "ES384")
        self.add_key("rsa-1", "RS384")

    def add_key(self, kid: str, alg: str) -> None:
        """Generate a key pair and publish its public half under ``kid``."""
        if alg.startswith("ES"):
            private: Any = ec.generate_private_key(ec.SECP384R1())
            public = json.loads(ECAlgorithm.to_jwk(private.public_key()))
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
        self.private[kid] = (private, alg)
        self.public_jwks.append({**public, "kid": kid, "use": "sig", "alg": alg})

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set."""
        return {"keys": list(self.public_jwks)}

    def write_jwks(self, path: Path) -> Path:
        """Write the JWK Set to a file and return its path."""
        path.write_text(json.dumps(self.jwks()), encoding="utf-8")
        return path

    def token(
        self,
        aud: str | list[str],
        *,
        kid: str = "ec-1",
        lifetime: int = 300,
        headers: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        """A signed JWT as the CDS Hooks spec describes it.

        Args:
            aud: the endpoint called.
            kid: which key signs.
            lifetime: seconds until ``exp``.
            headers: extra header fields.
            drop: claims to leave out.
            **claims: claims to add or replace.

        Returns:
            The compact JWT.
        """
        private, alg = self.private[kid]
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.iss,
            "aud": aud,
            "exp": now + lifetime,
            "iat": now,
            "jti": str(uuid.uuid4()),
            **claims,
        }
        for name in drop:
            payload.pop(name, None)
        return jwt.encode(payload, private, algorithm=alg, headers={"kid": kid, "typ": "JWT", **(headers or {})})
