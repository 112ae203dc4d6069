"""Settings of the review app (``kbcurator serve``): where it listens and who may act in it.

Nobody acts anonymously: writes need a signed-in user, declared here with a password hash
(``kbcurator hash-password``), or named by a trusted reverse proxy (the company's SSO) in a header. Keep hashes and
the session secret out of the YAML file where you can: ``KB_SERVE__USERS='{"alice": "scrypt$..."}'``,
``KB_SERVE__SESSION_SECRET=...``.
"""

from __future__ import annotations

import json
from ipaddress import ip_address

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    # User name -> password hash as `kbcurator hash-password` prints it ("scrypt$..."). Never a plain password.
    users: dict[str, str] = Field(default_factory=dict)
    # Behind an SSO proxy (oauth2-proxy, Pomerium, a company gateway): the header it puts the signed-in user in,
    # e.g. "X-Forwarded-User". Trusted only on requests that come from ``trusted_proxies``.
    trusted_user_header: str = ""
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    # Host headers the app answers to (a DNS-rebinding page cannot talk to it under another name). Empty: the
    # host it listens on plus localhost.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Signs the session cookie. Unset: a random one per process, so a restart signs everybody out.
    session_secret: SecretStr | None = None
    session_max_age_s: int = Field(default=8 * 3600, ge=60)
    # Set when the app is served over HTTPS (behind the proxy): the cookie is then never sent in clear text.
    secure_cookies: bool = False
    # How many items one page of the queue shows.
    page_size: int = Field(default=25, ge=1, le=500)
    # The search API's token (/api/v1, ``Authorization: Bearer <token>``), for RAG services; at least 16
    # characters (``python -c "import secrets; print(secrets.token_urlsafe(32))"``). Unset: the API answers only
    # clients on this machine (loopback). Keep it out of the YAML file: ``KB_SERVE__READ_TOKEN=...``.
    read_token: SecretStr | None = None

    @field_validator("users", mode="before")
    @classmethod
    def _users_from_env_json(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().startswith("{"):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValueError("serve.users must be a JSON object of user name -> password hash") from None
        return value

    @field_validator("users")
    @classmethod
    def _hashes_not_passwords(cls, value: dict[str, str]) -> dict[str, str]:
        for name, hashed in value.items():
            if not name.strip() or not hashed.startswith("scrypt$"):
                # Name the user only: the value may be a password someone pasted by mistake.
                raise ValueError(
                    f"serve.users[{name!r}] must be a hash from `kbcurator hash-password` (scrypt$...), not a password"
                )
        return value

    @field_validator("read_token", mode="before")
    @classmethod
    def _token_long_enough(cls, value: object) -> object:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str):
            if not raw.strip():
                return None  # KB_SERVE__READ_TOKEN= turns the token off
            if len(raw.strip()) < 16 or raw != raw.strip():
                raise ValueError("serve.read_token must be at least 16 characters, without surrounding spaces")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            try:
                ip_address(address)
            except ValueError:
                raise ValueError(f"serve.trusted_proxies: {address!r} is not an IP address") from None
        return value

    @property
    def auth_configured(self) -> bool:
        return bool(self.users) or bool(self.trusted_user_header)
