"""Settings, read from environment variables in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .store.deadlines import StatementLimits

DEFAULT_DATABASE = "sqlite:///" + str(Path("var") / "sharedcare.db")
DEFAULT_PROJECT_BASE = "https://sharedcare.example.org/fhir"


@dataclass(frozen=True)
class Settings:
    """Everything configurable about a server process."""

    database_url: str = DEFAULT_DATABASE
    base_url: str = ""
    fhir_path: str = "/fhir"
    max_request_bytes: int = 64 * 1024 * 1024
    max_request_line: int = 8000
    pool_size: int = 5
    echo_sql: bool = False
    log_level: str = "INFO"
    project_base_uri: str = DEFAULT_PROJECT_BASE
    mandatory_profiles: str = ""
    jwks_ca_bundle: str = ""
    access_policy_dir: str = ""
    audit_reads_sync: bool = False
    referential_integrity: str = "write,delete"
    audit_spool_dir: str = ""
    audit_spool_fsync: bool = False
    subscription_allow_private: bool = False
    subscription_allow_http: bool = False
    subscription_retry_hours: float = 24.0
    subscription_retry_max_delay_s: float = 300.0
    statement_limits: StatementLimits = field(default_factory=StatementLimits)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        settings = cls(
            database_url=env.get("DATABASE_URL", DEFAULT_DATABASE),
            base_url=env.get("BASE_URL", "").rstrip("/"),
            fhir_path="/" + env.get("FHIR_PATH", "/fhir").strip("/"),
            max_request_bytes=int(env.get("MAX_REQUEST_BYTES", str(64 * 1024 * 1024))),
            max_request_line=int(env.get("MAX_REQUEST_LINE", "8000")),
            pool_size=int(env.get("DB_POOL_SIZE", "5")),
            echo_sql=env.get("ECHO_SQL", "") in ("1", "true", "yes"),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            project_base_uri=env.get("PROJECT_BASE_URI", DEFAULT_PROJECT_BASE).rstrip("/"),
            mandatory_profiles=env.get("MANDATORY_PROFILES", ""),
            jwks_ca_bundle=env.get("JWKS_CA_BUNDLE", ""),
            access_policy_dir=env.get("ACCESS_POLICY_DIR", ""),
            audit_reads_sync=env.get("AUDIT_READS_SYNC", "") in ("1", "true", "yes"),
            referential_integrity=env.get("REFERENTIAL_INTEGRITY", "write,delete"),
            audit_spool_dir=env.get("AUDIT_SPOOL_DIR", ""),
            audit_spool_fsync=env.get("AUDIT_SPOOL_FSYNC", "") in ("1", "true", "yes"),
            subscription_allow_private=env.get("SUBSCRIPTION_ALLOW_PRIVATE_ENDPOINTS", "") in ("1", "true", "yes"),
            subscription_allow_http=env.get("SUBSCRIPTION_ALLOW_HTTP", "") in ("1", "true", "yes"),
            subscription_retry_hours=float(env.get("SUBSCRIPTION_RETRY_HOURS", "24")),
            subscription_retry_max_delay_s=float(env.get("SUBSCRIPTION_RETRY_MAX_DELAY_S", "300")),
            statement_limits=StatementLimits(
                search_ms=int(env.get("STATEMENT_TIMEOUT_SEARCH_MS", StatementLimits.search_ms)),
                write_ms=int(env.get("STATEMENT_TIMEOUT_WRITE_MS", StatementLimits.write_ms)),
                operation_ms=int(env.get("STATEMENT_TIMEOUT_OPERATION_MS", StatementLimits.operation_ms)),
            ),
        )
        return replace(settings, **overrides)
