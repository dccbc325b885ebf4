"""IAM and STS for one access key pair at a time, with explicit credentials and endpoint.

boto3 never looks for credentials, profiles or endpoints itself here: every client is built
from a `KeyPair` and an `AwsTarget` (endpoint URL + region), and no configuration or credential
file is read. Every AWS error becomes an `AwsError` whose message names the operation, the key
(redacted) and what to do, never a secret.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from runbook.redact import Redactor, fingerprint, redact_value

T = TypeVar("T")
DEFAULT_REGION = "us-east-1"
# AWS error codes meaning "this key pair is not (or no longer) accepted"
REJECTED = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "ExpiredToken",
}


class AwsError(Exception):
    """An AWS call failed; `code` is AWS's error code (or a local one), the text is secret-free."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def rejected(self) -> bool:
        """AWS does not accept the key pair that signed the call."""
        return self.code in REJECTED


@dataclass(frozen=True)
class KeyPair:
    """An access key id with its secret. Neither appears in `repr`."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.access_key_id)

    @property
    def redacted(self) -> str:
        return redact_value(self.access_key_id)


@dataclass(frozen=True)
class Identity:
    """Who a key pair belongs to, as `sts get-caller-identity` says."""

    arn: str
    account: str
    user: str | None  # the IAM user name; None for roles and the root user

    @classmethod
    def from_arn(cls, arn: str, account: str = "") -> Identity:
        # arn:aws:iam::123456789012:user/some/path/alice
        resource = arn.split(":", 5)[5] if arn.count(":") >= 5 else ""
        user = resource.rsplit("/", 1)[-1] if resource.startswith("user/") else None
        return cls(arn=arn, account=account or (arn.split(":")[4] if ":" in arn else ""), user=user)

    @property
    def role(self) -> str | None:
        """The role name behind an assumed-role ARN (temporary credentials)."""
        resource = self.arn.split(":", 5)[5] if self.arn.count(":") >= 5 else ""
        if resource.startswith("assumed-role/"):
            return resource.split("/")[1]
        return None


@dataclass(frozen=True)
class AccessKey:
    """One access key of an IAM user as `list_access_keys` shows it (no secret)."""

    key_id: str = field(repr=False)
    status: str  # Active | Inactive
    created: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status == "Active"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key_id)

    @property
    def redacted(self) -> str:
        return redact_value(self.key_id)


@dataclass(frozen=True)
class AwsTarget:
    """Where AWS is: an endpoint URL (None = AWS itself) and the signing region."""

    endpoint_url: str | None = None
    region: str = DEFAULT_REGION

    @classmethod
    def resolve(
        cls, options: Mapping[str, Any], env: Mapping[str, str], region: str = DEFAULT_REGION
    ) -> AwsTarget:
        """`--aws-endpoint-url` wins over `AWS_ENDPOINT_URL`; neither means AWS itself."""
        endpoint = options.get("aws_endpoint_url") or env.get("AWS_ENDPOINT_URL") or None
        return cls(endpoint_url=endpoint, region=region or DEFAULT_REGION)

    @property
    def shown(self) -> str:
        return self.endpoint_url or f"the public AWS endpoints ({self.region})"


class _Sessions:
    """One botocore session (service models loaded once) that reads no file and no variable."""

    _session: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls._session is None:
            import botocore.session

            # no AWS_PROFILE, no ~/.aws/config, no ~/.aws/credentials: all of it is explicit
            session = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
            session.set_config_variable("config_file", os.devnull)
            session.set_config_variable("credentials_file", os.devnull)
            cls._session = session
        return cls._session


def make_client(service: str, pair: KeyPair, target: AwsTarget) -> Any:
    """A boto3 client for `service` signed with `pair`, talking to `target` and nowhere else."""
    import boto3.session
    from botocore.config import Config

    config = Config(
        connect_timeout=5,
        read_timeout=20,
        retries={"max_attempts": 2, "mode": "standard"},
        ignore_configured_endpoint_urls=True,
    )
    session = boto3.session.Session(botocore_session=_Sessions.get())
    return session.client(
        service,
        region_name=target.region,
        endpoint_url=target.endpoint_url,
        aws_access_key_id=pair.access_key_id,
        aws_secret_access_key=pair.secret_access_key,
        aws_session_token=pair.session_token,
        config=config,
    )


MESSAGES = {
    "InvalidClientTokenId": "AWS does not accept the key {key} (InvalidClientTokenId): it was "
    "deleted, or it belongs to another endpoint or partition",
    "UnrecognizedClientException": "AWS does not accept the key {key} (UnrecognizedClient)",
    "InvalidAccessKeyId": "AWS does not know the key {key} (InvalidAccessKeyId)",
    "SignatureDoesNotMatch": "AWS rejects the secret paired with the key {key} "
    "(SignatureDoesNotMatch): the secret next to it is not the one AWS holds",
    "ExpiredToken": "the temporary credentials {key} have expired (ExpiredToken)",
    "AccessDenied": "the user of key {key} may not call {op} (AccessDenied): {detail}",
    "LimitExceeded": "{op}: the user already has two access keys, the most AWS allows "
    "(LimitExceeded)",
    "NoSuchEntity": "{op}: no such user or access key (NoSuchEntity)",
    "Throttling": "{op}: AWS is throttling requests (Throttling); try again in a minute",
}


class AwsClient:
    """IAM and STS signed with one key pair."""

    def __init__(self, pair: KeyPair, target: AwsTarget) -> None:
        self.pair = pair
        self.target = target
        self._clients: dict[str, Any] = {}
        self._redactor = Redactor()
        self._redactor.add_secret(pair.access_key_id)
        self._redactor.add_secret(pair.secret_access_key)
        if pair.session_token:
            self._redactor.add_secret(pair.session_token)

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = make_client(service, self.pair, self.target)
        return self._clients[service]

    def _call(self, op: str, fn: Callable[[], T], *secrets: str) -> T:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ProxyConnectionError,
        )

        for secret in secrets:
            self._redactor.add_secret(secret)
        try:
            return fn()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "Unknown")
            detail = self._redactor.text(str(error.get("Message") or ""))
            template = MESSAGES.get(code)
            if template is None:
                text = f"{op} failed ({code})" + (f": {detail}" if detail else "")
            else:
                text = template.format(key=self.pair.redacted, op=op, detail=detail or "denied")
            raise AwsError(code, text) from None
        except (EndpointConnectionError, ProxyConnectionError, ConnectTimeoutError):
            raise AwsError(
                "EndpointConnectionError",
                f"{op}: cannot reach the AWS endpoint {self.target.shown}",
            ) from None
        except BotoCoreError as exc:
            name = type(exc).__name__
            raise AwsError(name, f"{op} failed: {self._redactor.text(str(exc))}") from None

    # -- STS -----------------------------------------------------------------------------------
    def identity(self) -> Identity:
        """Who owns the key pair (`sts get-caller-identity`)."""
        answer = self._call("sts:GetCallerIdentity", self._client("sts").get_caller_identity)
        return Identity.from_arn(answer["Arn"], answer.get("Account", ""))

    # -- IAM -----------------------------------------------------------------------------------
    def list_keys(self, user: str) -> list[AccessKey]:
        """The user's access keys (at most two), oldest first."""

        def fetch() -> list[AccessKey]:
            pages = self._client("iam").get_paginator("list_access_keys").paginate(UserName=user)
            return [
                AccessKey(row["AccessKeyId"], row["Status"], row.get("CreateDate"))
                for page in pages
                for row in page["AccessKeyMetadata"]
            ]

        keys = self._call("iam:ListAccessKeys", fetch)
        for key in keys:
            self._redactor.add_secret(key.key_id)
        return sorted(keys, key=lambda k: k.created.timestamp() if k.created else 0.0)

    def create_key(self, user: str) -> KeyPair:
        """A new access key for `user`; its secret is shown this once."""
        answer = self._call(
            "iam:CreateAccessKey", lambda: self._client("iam").create_access_key(UserName=user)
        )
        key = answer["AccessKey"]
        pair = KeyPair(key["AccessKeyId"], key["SecretAccessKey"])
        self._redactor.add_secret(pair.access_key_id)
        self._redactor.add_secret(pair.secret_access_key)
        return pair

    def set_status(self, user: str, key_id: str, status: str) -> None:
        self._call(
            "iam:UpdateAccessKey",
            lambda: self._client("iam").update_access_key(
                UserName=user, AccessKeyId=key_id, Status=status
            ),
            key_id,
        )

    def delete_key(self, user: str, key_id: str) -> None:
        self._call(
            "iam:DeleteAccessKey",
            lambda: self._client("iam").delete_access_key(UserName=user, AccessKeyId=key_id),
            key_id,
        )

    def last_used(self, key_id: str) -> datetime | None:
        answer = self._call(
            "iam:GetAccessKeyLastUsed",
            lambda: self._client("iam").get_access_key_last_used(AccessKeyId=key_id),
            key_id,
        )
        return (answer.get("AccessKeyLastUsed") or {}).get("LastUsedDate")

    def list_users(self) -> list[str]:
        def fetch() -> list[str]:
            pages = self._client("iam").get_paginator("list_users").paginate()
            return [row["UserName"] for page in pages for row in page["Users"]]

        return self._call("iam:ListUsers", fetch)


def wait_until_accepted(
    client: AwsClient,
    expected_arn: str,
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    first_delay: float = 0.5,
    max_delay: float = 8.0,
) -> Identity:
    """Poll `get_caller_identity` with exponential backoff until the key answers as
    `expected_arn` (IAM is eventually consistent); raise AwsError("NotVerified") after `timeout`."""
    deadline = time.monotonic() + timeout
    delay = first_delay
    last = "no answer"
    while True:
        try:
            identity = client.identity()
            if identity.arn == expected_arn:
                return identity
            last = f"it answers as {identity.arn}, not {expected_arn}"
        except AwsError as exc:
            last = str(exc)
        left = deadline - time.monotonic()
        if left <= 0:
            raise AwsError(
                "NotVerified",
                f"the new key {client.pair.redacted} did not authenticate within "
                f"{timeout:g}s ({last})",
            )
        sleep(min(delay, left))
        delay = min(delay * 2, max_delay)
