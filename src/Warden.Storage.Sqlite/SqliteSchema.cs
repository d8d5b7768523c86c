namespace Warden.Storage.Sqlite;

/// <summary>
/// The schema, as an ordered list of migrations. <c>PRAGMA user_version</c> holds the number of
/// migrations applied; <see cref="SqliteWardenStore.InitializeAsync"/> applies the missing ones inside one
/// <c>BEGIN IMMEDIATE</c> transaction, so concurrent initializers serialize and the later ones find nothing to do.
/// Never edit a released migration: append a new one.
/// </summary>
internal static class SqliteSchema
{
    /// <summary>Migration <c>i</c> takes the file from version <c>i</c> to <c>i + 1</c>.</summary>
    public static readonly IReadOnlyList<string> Migrations =
    [
        // 1: principals, state, change feed.
        """
        CREATE TABLE IF NOT EXISTS principals (
            id          INTEGER PRIMARY KEY,
            kind        TEXT    NOT NULL,            -- 'agent' | 'operator' | 'approver'
            name        TEXT    NOT NULL,
            groups      TEXT    NOT NULL DEFAULT '[]', -- JSON array of strings
            token_hash  BLOB    NOT NULL UNIQUE,     -- SHA-256 of the token; unique across history
            created_at  TEXT    NOT NULL,            -- ISO 8601 UTC, 100 ns precision
            revoked_at  TEXT                         -- NULL while active
        );
        CREATE UNIQUE INDEX IF NOT EXISTS principals_active_kind_name
            ON principals (kind, name) WHERE revoked_at IS NULL;

        CREATE TABLE IF NOT EXISTS state (
            key         TEXT    NOT NULL PRIMARY KEY,
            value       TEXT    NOT NULL,
            updated_at  TEXT    NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE IF NOT EXISTS changes (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            topic       TEXT    NOT NULL,
            key         TEXT    NOT NULL,
            payload     TEXT,
            at          TEXT    NOT NULL
        );
        """,

        // 2: stops and pauses; lifted ones are kept as history.
        """
        CREATE TABLE IF NOT EXISTS stops (
            id          TEXT    NOT NULL PRIMARY KEY,
            scope       TEXT    NOT NULL,            -- 'all' | 'agent' | 'session' | 'server'
            target      TEXT    NOT NULL,
            issued_by   TEXT    NOT NULL,
            reason      TEXT    NOT NULL,
            is_pause    INTEGER NOT NULL DEFAULT 0,
            at          TEXT    NOT NULL,
            lifted_at   TEXT,
            lifted_by   TEXT,
            lift_reason TEXT
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS stops_active ON stops (lifted_at) WHERE lifted_at IS NULL;
        """,

        // 3: approvals (the record as JSON, with the columns queries filter on) and approve-and-remember grants.
        """
        CREATE TABLE IF NOT EXISTS approvals (
            id          TEXT    NOT NULL PRIMARY KEY,
            state       TEXT    NOT NULL,
            revision    INTEGER NOT NULL,
            agent       TEXT    NOT NULL,
            tool        TEXT    NOT NULL,
            digest      TEXT    NOT NULL,
            created_at  TEXT    NOT NULL,
            record      TEXT    NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS approvals_state ON approvals (state, created_at);
        CREATE INDEX IF NOT EXISTS approvals_agent_digest ON approvals (agent, digest);

        CREATE TABLE IF NOT EXISTS grants (
            id          TEXT    NOT NULL PRIMARY KEY,
            agent       TEXT    NOT NULL,
            until       TEXT    NOT NULL,
            revoked_at  TEXT,
            created_at  TEXT    NOT NULL,
            record      TEXT    NOT NULL
        ) WITHOUT ROWID;
        """,

        // 4: what reads of labelled data gave agents (the data guard's labels and fingerprints), until they lapse.
        """
        CREATE TABLE IF NOT EXISTS data_labels (
            seq          INTEGER PRIMARY KEY AUTOINCREMENT,
            id           TEXT    NOT NULL UNIQUE,
            agent        TEXT    NOT NULL,
            session      TEXT,                        -- NULL: the agent across all its sessions
            labels       TEXT    NOT NULL,            -- JSON array of strings
            fingerprints BLOB    NOT NULL,            -- 64-bit hashes, 8 bytes each, little-endian
            at           TEXT    NOT NULL,
            until        TEXT    NOT NULL
        );
        CREATE INDEX IF NOT EXISTS data_labels_until ON data_labels (until);
        """,
    ];

    /// <summary>The version this build writes and understands.</summary>
    public static int CurrentVersion => Migrations.Count;
}
