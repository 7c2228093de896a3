"""The database schema: resources, their versions, and one search index table per parameter type."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# SQLite only auto-numbers an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
Key = BigInteger().with_variant(Integer(), "sqlite")

resources = Table(
    "resources",
    metadata,
    Column("pk", Key, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated", BigInteger, nullable=False, comment="microseconds since the epoch, UTC"),
    Column("deleted", Boolean, nullable=False),
    UniqueConstraint("type", "id", name="uq_resources_type_id"),
    Index("ix_resources_type_updated", "type", "updated"),
)

resource_versions = Table(
    "resource_versions",
    metadata,
    Column("pk", BigInteger, primary_key=True, autoincrement=False),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),
    Column("body", Text, nullable=True, comment="the canonical JSON; null for a delete"),
    Index("ix_versions_updated", "updated"),
    Index("ix_versions_type_updated", "type", "updated"),
)

# Search indexes hold the current version only. Each table has a lookup index ending in `pk` (so
# equality lookups come out in key order and can stop early under LIMIT) and a reverse index starting
# with `pk` (to test a candidate resource, or to delete its rows). `sp` is a stable 63-bit hash of
# "<ResourceType>.<code>" (see server.fhir.searchparams.param_key).

idx_string = Table(
    "idx_string",
    metadata,
    Column("pk", BigInteger, nullable=False),
    Column("sp", BigInteger, nullable=False),
    Column("norm", String(200), nullable=False, comment="lower case, accents removed"),
    Column("exact", Text, nullable=False),
    Index("ix_idx_string_sp_norm", "sp", "norm", "pk", postgresql_ops={"norm": "varchar_pattern_ops"}),
    Index("ix_idx_string_pk", "pk", "sp"),
)

idx_token = Table(
    "idx_token",
    metadata,
    Column("pk", BigInteger, nullable=False),
    Column("sp", BigInteger, nullable=False),
    Column("system", String(255), nullable=False, comment="empty string when absent"),
    Column("code", String(255), nullable=False),
    Index("ix_idx_token_sp_code", "sp", "code", "system", "pk"),
    Index("ix_idx_token_pk", "pk", "sp"),
)

idx_date = Table(
    "idx_date",
    metadata,
    Column("pk", BigInteger, nullable=False),
    Column("sp", BigInteger, nullable=False),
    Column("lo", BigInteger, nullable=False),
    Column("hi", BigInteger, nullable=False),
    Index("ix_idx_date_sp_lo", "sp", "lo", "pk"),
    Index("ix_idx_date_sp_hi", "sp", "hi", "pk"),
    Index("ix_idx_date_pk", "pk", "sp", "lo", "hi"),
)

idx_number = Table(
    "idx_number",
    metadata,
    Column("pk", BigInteger, nullable=False),
    Column("sp", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    Index("ix_idx_number_sp_value", "sp", "value", "pk"),
    Index("ix_idx_number_pk", "pk", "sp", "value"),
)

idx_quantity = Table(
    "idx_quantity",
    metadata,
    Column("pk", BigInteger, nullable=False),
    Column("sp", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    Column("system", String(255), nullable=False),
    Column("code", String(255), nullable=False),
    Index("ix_idx_quantity_sp_value", "sp", "value", "pk"),
    Index("ix_idx_quantity_pk", "pk", "sp", "value"),
)

idx_reference = Table(
    "idx_reference",
    metadata,
    Column("pk", BigInteger, nullable=False),
    Column("sp", BigInteger, nullable=False),
    Column("ttype", String(64), nullable=False, comment="target type; empty when unknown"),
    Column("tid", String(255), nullable=False, comment="target id, or the URL when not local"),
    Column("tversion", String(64), nullable=True),
    Index("ix_idx_reference_sp_target", "sp", "tid", "ttype", "pk"),
    Index("ix_idx_reference_target", "tid", "ttype", "sp", "pk"),
    Index("ix_idx_reference_pk", "pk", "sp"),
)

idx_uri = Table(
    "idx_uri",
    metadata,
    Column("pk", BigInteger, nullable=False),
    Column("sp", BigInteger, nullable=False),
    Column("value", String(512), nullable=False),
    Index("ix_idx_uri_sp_value", "sp", "value", "pk", postgresql_ops={"value": "varchar_pattern_ops"}),
    Index("ix_idx_uri_pk", "pk", "sp"),
)

idx_composite = Table(
    "idx_composite",
    metadata,
    Column("pk", BigInteger, nullable=False),
    Column("sp", BigInteger, nullable=False),
    Column("system", String(255), nullable=False, comment="first component: a token"),
    Column("code", String(255), nullable=False),
    Column("text", String(255), nullable=True, comment="second component as text"),
    Column("text_system", String(255), nullable=True),
    Column("lo", Float, nullable=True, comment="second component as a number or date range"),
    Column("hi", Float, nullable=True),
    Index("ix_idx_composite_sp_code", "sp", "code", "pk"),
    Index("ix_idx_composite_pk", "pk", "sp"),
)

idx_compartment = Table(
    "idx_compartment",
    metadata,
    Column("pk", BigInteger, nullable=False),
    Column("patient", String(255), nullable=False, comment="a Patient whose compartment holds the resource"),
    Index("ix_idx_compartment_pk", "pk", "patient"),
    Index("ix_idx_compartment_patient", "patient", "pk"),
)
"""Patient compartment membership (R4's definition and profiles/access/compartment.yaml): the Patient
references of compartment parameters, kept apart from `idx_reference` so the planner's estimates of a
person's record are right (hundreds of rows, where a reference target in general has a few)."""

INDEX_TABLES: dict[str, Table] = {
    "string": idx_string,
    "token": idx_token,
    "date": idx_date,
    "number": idx_number,
    "quantity": idx_quantity,
    "reference": idx_reference,
    "uri": idx_uri,
    "composite": idx_composite,
    "compartment": idx_compartment,
}

reindex_state = Table(
    "reindex_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("definitions", String(64), nullable=False, comment="digest of the SearchParameters indexed"),
    Column("last_pk", BigInteger, nullable=False),
    Column("finished", Boolean, nullable=False),
)

load_ledger = Table(
    "load_ledger",
    metadata,
    Column("stream", String(255), primary_key=True, comment="source/organisation/extract file of the rows"),
    Column("key", String(255), primary_key=True, comment="the row's stable id within that file"),
    Column("digest", String(32), nullable=False, comment="of the row's values and the mapping that loaded it"),
    Column("entry", Text, nullable=False, comment="JSON: the resources the row wrote and the ones it refers to"),
)

case_status = Table(
    "case_status",
    metadata,
    Column("patient_pk", BigInteger, primary_key=True, autoincrement=False, comment="the Patient's resources.pk"),
    Column("generation", BigInteger, nullable=False, comment="bumped by every write the answer depends on"),
    Column("day", String(10), nullable=True, comment="the date the answer was made for, if it depends on it"),
    Column("basis", String(32), nullable=False, comment="digest of the rule sets and answer format used"),
    Column("body", Text, nullable=True, comment="the $case-status Parameters as served; NULL when stale"),
)

# Security: registered system clients, client-assertion ids seen (replay), revoked access tokens and the
# server's own token-signing keys. Times are seconds since the epoch.

clients = Table(
    "clients",
    metadata,
    Column("id", Text, primary_key=True, comment="client_id: iss and sub of its assertions"),
    Column("organization", Text, nullable=False, comment="identifier token system|value"),
    Column("kind", Text, nullable=False, comment="access policy name (profiles/access/<kind>.yaml)"),
    Column("scope", Text, nullable=False, comment="registered SMART scopes, space-separated"),
    Column("jwks", Text, nullable=True, comment="public JWKS by value (JSON)"),
    Column("jwks_uri", Text, nullable=True, comment="https URL of the client's public JWKS"),
    Column("created", BigInteger, nullable=False),
    Column("revoked", BigInteger, nullable=True, comment="when revoked; its tokens stop working"),
)

assertion_jtis = Table(
    "assertion_jtis",
    metadata,
    Column("client_id", Text, primary_key=True),
    Column("jti", Text, primary_key=True),
    Column("expires", BigInteger, nullable=False, comment="the assertion's exp; the row may go after it"),
    Index("ix_assertion_jtis_expires", "expires"),
)

token_revocations = Table(
    "token_revocations",
    metadata,
    Column("jti", Text, primary_key=True, comment="jti of a revoked access token"),
    Column("expires", BigInteger, nullable=False, comment="the token's exp; the row may go after it"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", Text, primary_key=True),
    Column("private_jwk", Text, nullable=False, comment="the private JWK (JSON) signing access tokens"),
    Column("created", BigInteger, nullable=False),
)

# The audit trail: one row per request (allowed or refused), and the patients whose data it carried.
# Written by the server only; read through the API by auditors (AuditEvent). Times in microseconds.

audit_events = Table(
    "audit_events",
    metadata,
    Column("pk", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("recorded", BigInteger, nullable=False, comment="when the answer was decided"),
    Column("request_id", Text, nullable=True),
    Column("client", Text, nullable=False, comment="client id, or system:<name> of an in-process caller"),
    Column("organization", Text, nullable=True, comment="the client's organisation, system|value"),
    Column("kind", Text, nullable=True, comment="the client's kind (access policy)"),
    Column("interaction", Text, nullable=False, comment="read, search-type, create, ..., operation, token"),
    Column("action", String(1), nullable=False, comment="C, R, U, D or E"),
    Column("status", Integer, nullable=False, comment="the HTTP status answered"),
    Column("resource_type", Text, nullable=True),
    Column("resource_id", Text, nullable=True),
    Column("query", Text, nullable=True, comment="the request as sent: method, path and query (bounded)"),
    Column("purpose", Text, nullable=True, comment="the stated purpose of use (ETREAT for break-glass)"),
    Column("alert", Boolean, nullable=False, comment="a security alert (break-glass, refused credentials)"),
    Column("detail", Text, nullable=True, comment="why refused, or the break-glass reason"),
    Index("ix_audit_events_recorded", "recorded"),
    Index("ix_audit_events_client", "client", "pk"),
)

audit_patients = Table(
    "audit_patients",
    metadata,
    Column("patient", Text, primary_key=True, comment="Patient id whose data the request carried"),
    Column("audit_pk", BigInteger, primary_key=True),
)

audit_spools = Table(
    "audit_spools",
    metadata,
    Column("name", Text, primary_key=True, comment="a server process's audit spool file (AUDIT_SPOOL_DIR)"),
    Column("shipped", BigInteger, nullable=False, comment="bytes of it already in audit_events"),
)

# The people each organisation holds, kept as rows so a caller's reach is one join: a holder is an access
# policy's kind and an organisation (`gp|https://fhir.nhs.uk/Id/ods-organization-code|A81001`). Written by
# `store/search/holdings.py` only: a holder's rows are made when a caller of it first needs them, and kept
# up to date by every write in the same transaction. Its row `objections` marks the kept objections as made.

reach_holders = Table(
    "reach_holders",
    metadata,
    Column("holder", Text, primary_key=True, comment="kind|organisation token"),
    Column("day", String(10), nullable=False, comment="the day its relationships were last evaluated"),
    Column("basis", Text, nullable=True, comment="a digest of the relationships its rows were evaluated by"),
)

reach_people = Table(
    "reach_people",
    metadata,
    Column("holder", Text, primary_key=True),
    Column("patient", Text, primary_key=True, comment="a Patient id the holder holds"),
)

# The standing objections to sharing, kept as rows so a caller's objection test is one probe per person: a
# row for each Patient an objection Consent names. Made whole when a caller that honours objections first
# needs them (its marker is the `reach_holders` row `objections`), kept by every write of a Consent.

reach_objections = Table(
    "reach_objections",
    metadata,
    Column("patient", Text, primary_key=True, comment="a Patient id with a standing objection"),
    Column("consent_pk", BigInteger, primary_key=True, comment="the objection Consent's resources.pk"),
    Index("ix_reach_objections_consent", "consent_pk"),
)

# Notifications (server/events/): the transactional outbox a write fills in its own transaction, the
# subscriptions' delivery state, and each subscription's numbered events (kept for `$events`).

event_outbox = Table(
    "event_outbox",
    metadata,
    Column("seq", Key, primary_key=True, autoincrement=True),
    Column("topic", Text, nullable=False, comment="the SubscriptionTopic canonical the write triggered"),
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("interaction", String(8), nullable=False, comment="create, update or delete"),
    Column("recorded", BigInteger, nullable=False, comment="microseconds since the epoch, UTC"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(64), primary_key=True, comment="the Subscription resource's id"),
    Column("topic", Text, nullable=False),
    Column("owner_client", Text, nullable=False, comment="the client that created it"),
    Column("owner_holder", Text, nullable=False, comment="kind|organisation token of its owner"),
    Column("status", String(16), nullable=False, comment="requested, active, error or off"),
    Column("definition", Text, nullable=False, comment="JSON: endpoint, headers, content, filters, periods"),
    Column("started", BigInteger, nullable=False, comment="microseconds; events recorded before are not its"),
    Column("delivered", BigInteger, nullable=False, comment="number of the last event the endpoint took"),
    Column("attempts", Integer, nullable=False, comment="failed attempts since the last success"),
    Column("failing_since", BigInteger, nullable=True),
    Column("next_attempt", BigInteger, nullable=False, comment="microseconds; no delivery before"),
    Column("last_sent", BigInteger, nullable=False, comment="microseconds of the last notification taken"),
    Column("heartbeat_due", BigInteger, nullable=True, comment="microseconds; when a heartbeat is next due"),
    Column("error", Text, nullable=True),
    Index("ix_subscriptions_topic", "topic", "status"),
    Index("ix_subscriptions_holder", "owner_holder"),
)

subscription_events = Table(
    "subscription_events",
    metadata,
    Column("subscription", String(64), primary_key=True),
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("recorded", BigInteger, nullable=False, comment="when the write was recorded (microseconds)"),
)
