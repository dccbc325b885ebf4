"""Google Cloud and Azure credentials in discovery (the clouds Shai-Hulud harvested): where each
is found, how it is shown, where to revoke it, what is not a credential, and the checklist item."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from steps.credentials.discover import discover
from steps.credentials.model import Discovery

REFRESH = "1//0gLmNoPqRsTuVwXyZ-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
PRIVATE_KEY = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDf3k\n"
    "-----END PRIVATE KEY-----\n"
)
AZ_REFRESH = "0.AXoAbCdEfGhIjKlMnOpQrStUvWxYz0123456789-abcdefghijklmnopqrstuvwxyzABCDEF"
SP_SECRET = "Qx8Q~abcdefghijklmnopqrstuvwxyz0123456789AB"
# variables that would point discovery at this machine's real cloud configuration
CLOUD_VARS = ("CLOUDSDK_CONFIG", "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_CONFIG_DIR")


def sealed(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in CLOUD_VARS}


def gcloud(home: Path) -> Path:
    folder = home / ".config" / "gcloud"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def find(home: Path, env: dict[str, str] | None = None) -> Discovery:
    return discover(home=home, env={"HOME": str(home), **(env or {})})


def of_type(found: Discovery, kind: str) -> list:
    return [c for c in found.credentials if c.type == kind]


def test_gcloud_application_default_credentials_user(tmp_path: Path) -> None:
    home = tmp_path / "home"
    adc = gcloud(home) / "application_default_credentials.json"
    adc.write_text(
        json.dumps(
            {
                "client_id": "764086051850-6qr4p6gpi6hn5.apps.googleusercontent.com",
                "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty",
                "refresh_token": REFRESH,
                "type": "authorized_user",
            },
            indent=2,
        )
    )
    found = find(home)
    [cred] = of_type(found, "gcp-credential")
    assert cred.value == REFRESH and cred.rotation == "manual"
    assert cred.location.path == adc and cred.location.line == 4
    assert "gcloud auth application-default revoke" in cred.revoke_at
    assert "myaccount.google.com" in cred.revoke_at
    assert REFRESH not in json.dumps(cred.public(home))
    assert found.problems == []


def test_service_account_key_by_environment_and_legacy_credentials(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = tmp_path / "keys" / "deploy.json"
    key.parent.mkdir()
    key.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "acme",
                "private_key_id": "0123456789abcdef0123456789abcdef01234567",
                "private_key": PRIVATE_KEY,
                "client_email": "deploy@acme.iam.gserviceaccount.com",
            }
        )
    )
    legacy = gcloud(home) / "legacy_credentials" / "dev@acme.example"
    legacy.mkdir(parents=True)
    (legacy / "adc.json").write_text(
        json.dumps({"type": "authorized_user", "refresh_token": REFRESH})
    )
    found = find(home, {"GOOGLE_APPLICATION_CREDENTIALS": str(key)})
    creds = {c.detail.get("kind"): c for c in of_type(found, "gcp-credential")}
    sa = creds["service account key"]
    assert sa.value == PRIVATE_KEY
    assert (
        "gcloud iam service-accounts keys delete 0123456789abcdef0123456789abcdef01234567 "
        "--iam-account=deploy@acme.iam.gserviceaccount.com"
    ) in sa.revoke_at
    user = creds["user login (refresh token)"]
    assert user.detail["account"] == "dev@acme.example"
    assert "gcloud auth revoke dev@acme.example" in user.revoke_at


def test_gcloud_token_stores_are_found_by_presence(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = gcloud(home)
    (folder / "credentials.db").write_bytes(b"SQLite format 3\x00" + os.urandom(64))
    (folder / "access_tokens.db").write_bytes(b"SQLite format 3\x00" + os.urandom(64))
    creds = {c.location.path.name: c for c in of_type(find(home), "gcp-credential")}
    assert set(creds) == {"credentials.db", "access_tokens.db"}
    assert "gcloud auth revoke --all" in creds["credentials.db"].revoke_at
    assert creds["credentials.db"].value.startswith("sha256:")


def test_cloudsdk_config_moves_the_gcloud_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    custom = tmp_path / "gcloud-config"
    custom.mkdir()
    (custom / "application_default_credentials.json").write_text(
        json.dumps({"type": "authorized_user", "refresh_token": REFRESH})
    )
    assert len(of_type(find(home, {"CLOUDSDK_CONFIG": str(custom)}), "gcp-credential")) == 1


def test_not_gcp_credentials(tmp_path: Path) -> None:
    """A federation config has no secret; a placeholder is no token; a malformed file is a problem
    naming the file and line, never a crash."""
    home = tmp_path / "home"
    folder = gcloud(home)
    (folder / "application_default_credentials.json").write_text(
        json.dumps({"type": "external_account", "audience": "//iam.googleapis.com/x"})
    )
    legacy = folder / "legacy_credentials" / "a@b.example"
    legacy.mkdir(parents=True)
    (legacy / "adc.json").write_text('{"type": "authorized_user", "refresh_token": "xxxxxxxx"}')
    broken = folder / "legacy_credentials" / "c@d.example"
    broken.mkdir()
    (broken / "adc.json").write_text('{\n  "type": "authorized_user",\n  "refresh_token": \n}')
    found = find(home)
    assert of_type(found, "gcp-credential") == []
    assert [(w, m) for w, m in found.problems] == [
        (f"{broken / 'adc.json'}:4", "malformed JSON: Expecting value")
    ]


def azure(home: Path) -> Path:
    folder = home / ".azure"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_azure_msal_cache_service_principals_and_profile(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = azure(home)
    (folder / "azureProfile.json").write_text(
        "\ufeff"
        + json.dumps(
            {
                "subscriptions": [
                    {"id": "s1", "name": "Production", "user": {"name": "alice@contoso.example"}},
                    {"id": "s2", "name": "Staging", "user": {"name": "alice@contoso.example"}},
                ]
            }
        ),
        encoding="utf-8",
    )
    (folder / "msal_token_cache.json").write_text(
        json.dumps(
            {
                "Account": {
                    "k": {"home_account_id": "uid.tid", "username": "alice@contoso.example"}
                },
                "RefreshToken": {
                    "r": {"home_account_id": "uid.tid", "secret": AZ_REFRESH, "client_id": "c"}
                },
                "AccessToken": {"a": {"home_account_id": "uid.tid", "secret": "eyJ0eXAi.short"}},
            },
            indent=1,
        )
    )
    (folder / "service_principal_entries.json").write_text(
        json.dumps(
            [
                {
                    "client_id": "11111111-2222-3333-4444-555555555555",
                    "tenant": "t",
                    "client_secret": SP_SECRET,
                }
            ]
        )
    )
    found = find(home)
    creds = {c.detail["kind"]: c for c in of_type(found, "azure-credential")}
    assert set(creds) == {"az login refresh token", "service principal secret"}
    user = creds["az login refresh token"]
    assert user.value == AZ_REFRESH
    assert user.detail["user"] == "alice@contoso.example"
    assert user.detail["subscriptions"] == "Production, Staging"
    assert "az logout --username alice@contoso.example" in user.revoke_at
    assert "Revoke sessions" in user.revoke_at
    sp = creds["service principal secret"]
    assert sp.value == SP_SECRET
    assert "az ad app credential delete --id 11111111-2222-3333-4444-555555555555" in sp.revoke_at
    assert found.problems == []


def test_azure_legacy_token_store_and_encrypted_cache(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = azure(home)
    (folder / "accessTokens.json").write_text(
        json.dumps(
            [
                {"userId": "bob@contoso.example", "refreshToken": AZ_REFRESH, "accessToken": "x"},
                {"servicePrincipalId": "app-1", "accessToken": SP_SECRET},
            ]
        )
    )
    (folder / "msal_token_cache.bin").write_bytes(os.urandom(128))
    kinds = sorted(c.detail["kind"] for c in of_type(find(home), "azure-credential"))
    assert kinds == [
        "encrypted az login token cache",
        "refresh token (Azure CLI before 2.30)",
        "service principal secret (Azure CLI before 2.30)",
    ]


def test_azure_config_dir_and_malformed_json(tmp_path: Path) -> None:
    home = tmp_path / "home"
    custom = tmp_path / "az"
    custom.mkdir()
    (custom / "msal_token_cache.json").write_text("{not json")
    found = find(home, {"AZURE_CONFIG_DIR": str(custom)})
    assert of_type(found, "azure-credential") == []
    assert [w for w, _ in found.problems] == [f"{custom / 'msal_token_cache.json'}:1"]


def test_a_fifo_named_like_a_store_is_a_problem_never_waited_on(tmp_path: Path) -> None:
    home = tmp_path / "home"
    os.mkfifo(gcloud(home) / "credentials.db")
    os.mkfifo(azure(home) / "msal_token_cache.json")
    found = find(home)  # returns at once
    assert len(found.problems) == 2
    assert all("FIFO" in message for _, message in found.problems)


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_secrets_cli_shows_them_redacted(tmp_path: Path, run_cli, sandbox_env, fmt: str) -> None:
    home = Path(sandbox_env["HOME"])
    (gcloud(home) / "application_default_credentials.json").write_text(
        json.dumps({"type": "authorized_user", "refresh_token": REFRESH})
    )
    (azure(home) / "service_principal_entries.json").write_text(
        json.dumps([{"client_id": "app-2", "client_secret": SP_SECRET}])
    )
    (tmp_path / "empty-project").mkdir()
    out = run_cli(
        "secrets", "--host", tmp_path / "empty-project", "--format", fmt, env=sealed(sandbox_env)
    )
    assert out.returncode == 0, out.stderr
    assert "gcp-credential" in out.stdout and "azure-credential" in out.stdout
    assert REFRESH not in out.stdout + out.stderr and SP_SECRET not in out.stdout + out.stderr


def test_checklist_items_name_the_revoke_place(tmp_path: Path, run_cli, sandbox_env) -> None:
    """The bundled playbook's credential checklist turns them into items (a dry run)."""
    home = Path(sandbox_env["HOME"])
    (gcloud(home) / "application_default_credentials.json").write_text(
        json.dumps({"type": "authorized_user", "refresh_token": REFRESH})
    )
    traps = Path(__file__).parent / "fixtures" / "shai-hulud" / "projects" / "traps"
    target = Path(shutil.copytree(traps, tmp_path / "project", symlinks=True))
    out = run_cli(
        "run",
        "shai-hulud-2025",
        "--target",
        target,
        "--dry-run",
        "--no-input",
        env=sealed(sandbox_env),
        timeout=300,
    )
    journal = next((tmp_path / "state").rglob("*.jsonl")).read_text()
    assert REFRESH not in journal and REFRESH not in out.stdout + out.stderr
    items = [
        json.loads(line)["data"]
        for line in journal.splitlines()
        if json.loads(line)["event"] == "manual_item"
        and json.loads(line)["data"]["step"] == "rotate-other-credentials"
    ]
    gcp = [i for i in items if i["text"].startswith("Revoke gcp-credential")]
    assert len(gcp) == 1 and "gcloud auth application-default revoke" in gcp[0]["text"]
