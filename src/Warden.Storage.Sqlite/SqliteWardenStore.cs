using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;
using SQLitePCL;
using Warden.Core.Approvals;
using Warden.Core.DataGuard;
using Warden.Core.Identity;
using Warden.Core.Storage;
using Warden.Core.Stops;

namespace Warden.Storage.Sqlite;

/// <summary>
/// <see cref="IWardenStore"/> on one SQLite file in WAL mode. Several processes may share the file: writes
/// serialize on SQLite's write lock (waiting up to <see cref="SqliteStoreOptions.BusyTimeout"/>), and
/// watchers see other processes' changes by polling <c>PRAGMA data_version</c>. See docs/storage.md.
/// </summary>
/// <remarks>
/// Thread-safe. Each operation borrows a pooled connection for its duration; writes run in short
/// <c>BEGIN IMMEDIATE</c> transactions. Microsoft.Data.Sqlite executes synchronously: reads (never blocked by
/// writers in WAL mode, and indexed) run on the caller's thread; writes and initialization, which may wait for
/// another writer's lock, first move to the thread pool so the caller gets its task back at once.
/// </remarks>
public sealed class SqliteWardenStore : IWardenStore
{
    private const int WatchBatchSize = 256;
    private const int SqliteConstraint = 19;

    private readonly SqliteStoreOptions _options;
    private readonly string _connectionString;
    private readonly string _dedicatedConnectionString;
    private readonly string _connectionPragmas;
    /// <summary>
    /// The per-connection pragmas last applied to each native handle. Static because instances on the same
    /// file share Microsoft.Data.Sqlite's pool (it is keyed by connection string), possibly with other settings.
    /// </summary>
    private static readonly ConditionalWeakTable<SQLitePCL.sqlite3, string> AppliedPragmas = [];

    private readonly ChangeNotifier _notifier;
    private readonly CancellationTokenSource _disposing = new();
    private volatile bool _initialized;
    private WalCheckpointer? _checkpointer;
    private int _disposed;

    // A stop's record (TryAddStopNow) has a connection and statements of its own, prepared once: its commit is what
    // a stop's acknowledgement waits for, and on a busy machine the time it takes is the time the stopping thread
    // can be preempted. Opening a pooled connection and parsing two statements per stop took most of it.
    private readonly Lock _stopWriterLock = new();
    private SqliteConnection? _stopWriter;
    private sqlite3_stmt? _insertStop;
    private sqlite3_stmt? _insertStopChange;

    /// <summary>Creates the store; nothing touches the file until <see cref="InitializeAsync"/>.</summary>
    public SqliteWardenStore(SqliteStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Path);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.PollInterval, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BusyTimeout, TimeSpan.Zero);
        ArgumentNullException.ThrowIfNull(options.Time);
        _options = options;

        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = System.IO.Path.GetFullPath(options.Path),
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            // Microsoft.Data.Sqlite's own retry loop on SQLITE_BUSY, in whole seconds; busy_timeout below is the precise one.
            DefaultTimeout = Math.Max(1, (int)Math.Ceiling(options.BusyTimeout.TotalSeconds)),
        };
        _connectionString = builder.ToString();
        builder.Pooling = false;
        _dedicatedConnectionString = builder.ToString();

        // Per-connection settings (journal_mode=WAL is persistent in the file and set once by InitializeAsync).
        _connectionPragmas = string.Create(
            CultureInfo.InvariantCulture,
            $"PRAGMA busy_timeout = {(long)options.BusyTimeout.TotalMilliseconds}; PRAGMA synchronous = {(options.FullSync ? "FULL" : "NORMAL")};")
            + (options.CheckpointInterval > TimeSpan.Zero ? " " + WalCheckpointer.WriterPragmas : "");

        _notifier = new ChangeNotifier(OpenDedicatedAsync, options.PollInterval, options.Time);
    }

    /// <summary>Full path of the database file.</summary>
    public string FilePath => new SqliteConnectionStringBuilder(_connectionString).DataSource;

    internal ChangeNotifier Notifier => _notifier;

    internal WalCheckpointer? Checkpointer => _checkpointer;

    /// <inheritdoc />
    public async ValueTask InitializeAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        cancellationToken.ThrowIfCancellationRequested();
        await Task.CompletedTask.ConfigureAwait(ConfigureAwaitOptions.ForceYielding); // may wait on other initializers
        try
        {
            using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

            var mode = Convert.ToString(await ScalarAsync(connection, "PRAGMA journal_mode = WAL;", cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
            if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
            {
                throw new StoreUnavailableException(
                    $"The SQLite store '{FilePath}' could not switch to WAL mode (journal_mode is '{mode}'). " +
                    "WAL needs a local file system that supports shared memory.");
            }

            using var transaction = connection.BeginTransaction(deferred: false);
            var version = Convert.ToInt32(await ScalarAsync(connection, "PRAGMA user_version;", cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
            if (version > SqliteSchema.CurrentVersion)
            {
                throw new StoreUnavailableException(
                    $"The SQLite store '{FilePath}' has schema version {version}, newer than the {SqliteSchema.CurrentVersion} this Warden understands. Upgrade Warden.");
            }

            for (var next = version; next < SqliteSchema.CurrentVersion; next++)
            {
                using var migrate = connection.CreateCommand();
                migrate.CommandText = SqliteSchema.Migrations[next];
                await migrate.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            if (version != SqliteSchema.CurrentVersion)
            {
                using var stamp = connection.CreateCommand();
                stamp.CommandText = string.Create(CultureInfo.InvariantCulture, $"PRAGMA user_version = {SqliteSchema.CurrentVersion};");
                await stamp.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            transaction.Commit();
            if (_options.CheckpointInterval > TimeSpan.Zero && Volatile.Read(ref _checkpointer) is null)
            {
                var checkpointer = new WalCheckpointer(FilePath, _options.CheckpointInterval);
                if (Interlocked.CompareExchange(ref _checkpointer, checkpointer, null) is not null)
                {
                    checkpointer.Dispose();
                }
            }

            _initialized = true;
        }
        catch (SqliteException ex)
        {
            throw Fault("initialize", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask<bool> AddPrincipalAsync(Principal principal, ReadOnlyMemory<byte> tokenHash, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentException.ThrowIfNullOrEmpty(principal.Name);
        ArgumentNullException.ThrowIfNull(principal.Groups);
        if (tokenHash.IsEmpty)
        {
            throw new ArgumentException("The token hash is empty.", nameof(tokenHash));
        }

        if (!principal.IsActive)
        {
            throw new ArgumentException("Only active principals can be added; revoke them afterwards.", nameof(principal));
        }

        var kind = SqliteFormat.FormatKind(principal.Kind);
        var groups = SqliteFormat.FormatGroups(principal.Groups);
        var hash = ToArray(tokenHash);
        return await WriteAsync(
            "add a principal",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText =
                    """
                    INSERT INTO principals (kind, name, groups, token_hash, created_at)
                    VALUES ($kind, $name, $groups, $hash, $created)
                    ON CONFLICT (kind, name) WHERE revoked_at IS NULL DO NOTHING;
                    """;
                command.Parameters.AddWithValue("$kind", kind);
                command.Parameters.AddWithValue("$name", principal.Name);
                command.Parameters.AddWithValue("$groups", groups);
                command.Parameters.AddWithValue("$hash", hash);
                command.Parameters.AddWithValue("$created", SqliteFormat.FormatTimestamp(principal.CreatedAt));
                try
                {
                    return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;
                }
                catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteConstraint)
                {
                    throw new InvalidOperationException(
                        "Another principal (active or revoked) already has this token hash; tokens must never be reused.", ex);
                }
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<Principal?> FindPrincipalByTokenHashAsync(ReadOnlyMemory<byte> tokenHash, CancellationToken cancellationToken = default)
    {
        if (tokenHash.IsEmpty)
        {
            return null;
        }

        var hash = ToArray(tokenHash);
        return await ReadAsync(
            "find a principal",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText =
                    "SELECT kind, name, groups, created_at, revoked_at FROM principals WHERE token_hash = $hash AND revoked_at IS NULL;";
                command.Parameters.AddWithValue("$hash", hash);
                using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                return await reader.ReadAsync(ct).ConfigureAwait(false) ? ReadPrincipal(reader) : null;
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<Principal>> ListPrincipalsAsync(PrincipalKind? kind = null, bool includeRevoked = false, CancellationToken cancellationToken = default)
    {
        var kindText = kind is { } k ? SqliteFormat.FormatKind(k) : null;
        return await ReadAsync<IReadOnlyList<Principal>>(
            "list principals",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText =
                    """
                    SELECT kind, name, groups, created_at, revoked_at FROM principals
                    WHERE ($kind IS NULL OR kind = $kind) AND ($all OR revoked_at IS NULL)
                    ORDER BY id;
                    """;
                command.Parameters.AddWithValue("$kind", (object?)kindText ?? DBNull.Value);
                command.Parameters.AddWithValue("$all", includeRevoked);
                using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                var rows = new List<Principal>();
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    rows.Add(ReadPrincipal(reader));
                }

                // Stable sort: rows come oldest first, so equal kind and name keep that order.
                return rows.OrderBy(p => p.Kind).ThenBy(p => p.Name, StringComparer.Ordinal).ToList();
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> RevokePrincipalAsync(PrincipalKind kind, string name, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var kindText = SqliteFormat.FormatKind(kind);
        return await WriteAsync(
            "revoke a principal",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText =
                    "UPDATE principals SET revoked_at = $at WHERE kind = $kind AND name = $name AND revoked_at IS NULL;";
                command.Parameters.AddWithValue("$at", SqliteFormat.FormatTimestamp(at));
                command.Parameters.AddWithValue("$kind", kindText);
                command.Parameters.AddWithValue("$name", name);
                return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<string?> GetStateAsync(string key, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        return await ReadAsync(
            "read state",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText = "SELECT value FROM state WHERE key = $key;";
                command.Parameters.AddWithValue("$key", key);
                return await command.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask SetStateAsync(string key, string value, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        var now = SqliteFormat.FormatTimestamp(_options.Time.GetUtcNow());
        await WriteAsync(
            "write state",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText =
                    """
                    INSERT INTO state (key, value, updated_at) VALUES ($key, $value, $now)
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at;
                    """;
                command.Parameters.AddWithValue("$key", key);
                command.Parameters.AddWithValue("$value", value);
                command.Parameters.AddWithValue("$now", now);
                return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask AddStopAsync(StopRecord stop, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stop);
        await WriteAsync(
            "record a stop",
            (connection, ct) => ValueTask.FromResult(InsertStop(connection, stop)),
            cancellationToken).ConfigureAwait(false);
        _notifier.Pulse();
    }

    /// <inheritdoc />
    public bool TryAddStopNow(StopRecord stop)
    {
        ArgumentNullException.ThrowIfNull(stop);
        ThrowIfNotReady();
        if (_options.FullSync || !_stopWriterLock.TryEnter())
        {
            return false;
        }

        try
        {
            var db = StopWriter();
            if (!ImmediateTransaction.TryBegin(db, _options.BusyTimeout))
            {
                return false;
            }

            ImmediateTransaction.Complete(db, (Store: this, Db: db, Stop: stop), static s => s.Store.InsertStopNow(s.Db, s.Stop));
        }
        catch (SqliteException ex)
        {
            CloseStopWriter();
            throw Fault("record a stop", ex);
        }
        finally
        {
            _stopWriterLock.Exit();
        }

        _notifier.Pulse();
        return true;
    }

    // Under _stopWriterLock.
    private sqlite3 StopWriter()
    {
        if (_stopWriter is { } open)
        {
            return open.Handle!;
        }

        var connection = OpenDedicatedAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
        try
        {
            var db = connection.Handle!;
            _insertStop = NativeStatements.Prepare(db, "INSERT INTO stops (id, scope, target, issued_by, reason, is_pause, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING;");
            _insertStopChange = NativeStatements.Prepare(db, "INSERT INTO changes (topic, key, payload, at) VALUES (?1, ?2, ?3, ?4);");
        }
        catch
        {
            _insertStop?.Dispose();
            _insertStop = null;
            connection.Dispose();
            throw;
        }

        _stopWriter = connection;
        return connection.Handle!;
    }

    // Under _stopWriterLock, inside the transaction: the same rows as InsertStop, through the prepared statements.
    private int InsertStopNow(sqlite3 db, StopRecord stop)
    {
        var scope = stop.Scope.ToString().ToLowerInvariant();
        var insert = _insertStop!;
        raw.sqlite3_bind_text16(insert, 1, stop.Id.AsSpan());
        raw.sqlite3_bind_text16(insert, 2, scope.AsSpan());
        raw.sqlite3_bind_text16(insert, 3, stop.Target.AsSpan());
        raw.sqlite3_bind_text16(insert, 4, stop.By.AsSpan());
        raw.sqlite3_bind_text16(insert, 5, stop.Reason.AsSpan());
        raw.sqlite3_bind_int(insert, 6, stop.IsPause ? 1 : 0);
        raw.sqlite3_bind_text16(insert, 7, SqliteFormat.FormatTimestamp(stop.At).AsSpan());
        NativeStatements.Step(insert, db);
        var inserted = raw.sqlite3_changes(db);
        if (inserted == 1)
        {
            var change = _insertStopChange!;
            raw.sqlite3_bind_text16(change, 1, ChangeTopics.Stop.AsSpan());
            raw.sqlite3_bind_text16(change, 2, stop.Id.AsSpan());
            raw.sqlite3_bind_text16(change, 3, StopPayload(stop.IsPause ? "paused" : "stopped", scope, stop.Target, stop.By, stop.Reason).AsSpan());
            raw.sqlite3_bind_text16(change, 4, SqliteFormat.FormatTimestamp(_options.Time.GetUtcNow()).AsSpan());
            NativeStatements.Step(change, db);
        }

        return inserted;
    }

    // Statements before their connection: a connection closes only when nothing is prepared on it.
    private void CloseStopWriter()
    {
        _insertStop?.Dispose();
        _insertStopChange?.Dispose();
        _insertStop = _insertStopChange = null;
        _stopWriter?.Dispose();
        _stopWriter = null;
    }

    // Inside a write transaction: the stop and, when it is new, its change for the other processes.
    private int InsertStop(SqliteConnection connection, StopRecord stop)
    {
        using var command = connection.CreateCommand();
        command.CommandText =
            """
            INSERT INTO stops (id, scope, target, issued_by, reason, is_pause, at)
            VALUES ($id, $scope, $target, $by, $reason, $pause, $at)
            ON CONFLICT (id) DO NOTHING;
            """;
        command.Parameters.AddWithValue("$id", stop.Id);
        command.Parameters.AddWithValue("$scope", stop.Scope.ToString().ToLowerInvariant());
        command.Parameters.AddWithValue("$target", stop.Target);
        command.Parameters.AddWithValue("$by", stop.By);
        command.Parameters.AddWithValue("$reason", stop.Reason);
        command.Parameters.AddWithValue("$pause", stop.IsPause ? 1 : 0);
        command.Parameters.AddWithValue("$at", SqliteFormat.FormatTimestamp(stop.At));
        var inserted = command.ExecuteNonQuery();
        if (inserted == 1)
        {
            InsertChangeAsync(connection, ChangeTopics.Stop, stop.Id, StopPayload(stop.IsPause ? "paused" : "stopped", stop.Scope.ToString().ToLowerInvariant(), stop.Target, stop.By, stop.Reason), CancellationToken.None)
                .AsTask().GetAwaiter().GetResult();
        }

        return inserted;
    }

    /// <inheritdoc />
    public async ValueTask<bool> LiftStopAsync(string id, string by, string reason, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        var lifted = await WriteAsync(
            "lift a stop",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText = "UPDATE stops SET lifted_at = $at, lifted_by = $by, lift_reason = $reason WHERE id = $id AND lifted_at IS NULL RETURNING scope, target;";
                command.Parameters.AddWithValue("$id", id);
                command.Parameters.AddWithValue("$by", by);
                command.Parameters.AddWithValue("$reason", reason);
                command.Parameters.AddWithValue("$at", SqliteFormat.FormatTimestamp(at));
                string? scope = null, target = null;
                using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
                {
                    if (await reader.ReadAsync(ct).ConfigureAwait(false))
                    {
                        scope = reader.GetString(0);
                        target = reader.GetString(1);
                    }
                }

                if (scope is null)
                {
                    return false;
                }

                await InsertChangeAsync(connection, ChangeTopics.Stop, id, StopPayload("resumed", scope, target!, by, reason), ct).ConfigureAwait(false);
                return true;
            },
            cancellationToken).ConfigureAwait(false);
        if (lifted)
        {
            _notifier.Pulse();
        }

        return lifted;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<StopRecord>> ListStopsAsync(CancellationToken cancellationToken = default) =>
        await ReadAsync<IReadOnlyList<StopRecord>>(
            "list stops",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText = "SELECT id, scope, target, issued_by, reason, is_pause, at FROM stops WHERE lifted_at IS NULL ORDER BY at, id;";
                using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                var list = new List<StopRecord>();
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    list.Add(new StopRecord(
                        reader.GetString(0),
                        reader.GetString(1) switch { "all" => StopScope.All, "agent" => StopScope.Agent, "session" => StopScope.Session, _ => StopScope.Server },
                        reader.GetString(2),
                        reader.GetString(3),
                        reader.GetString(4),
                        SqliteFormat.ParseTimestamp(reader.GetString(6)),
                        reader.GetInt64(5) != 0));
                }

                return list;
            },
            cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask AddApprovalAsync(ApprovalRecord approval, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(approval);
        await WriteAsync(
            "record an approval",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText =
                    """
                    INSERT INTO approvals (id, state, revision, agent, tool, digest, created_at, record)
                    VALUES ($id, $state, $revision, $agent, $tool, $digest, $created, $record)
                    ON CONFLICT (id) DO NOTHING;
                    """;
                BindApproval(command, approval);
                if (await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false) != 1)
                {
                    throw new InvalidOperationException($"approval {approval.Id} exists already");
                }

                await InsertChangeAsync(connection, ChangeTopics.Approval, approval.Id, ApprovalPayload(approval), ct).ConfigureAwait(false);
                return 1;
            },
            cancellationToken).ConfigureAwait(false);
        _notifier.Pulse();
    }

    /// <inheritdoc />
    public async ValueTask<ApprovalRecord?> GetApprovalAsync(string id, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        return await ReadAsync(
            "read an approval",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText = "SELECT record FROM approvals WHERE id = $id;";
                command.Parameters.AddWithValue("$id", id);
                return await command.ExecuteScalarAsync(ct).ConfigureAwait(false) is string json ? ApprovalJson.Deserialize(json) : null;
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ApprovalRecord>> ListApprovalsAsync(ApprovalQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        return await ReadAsync<IReadOnlyList<ApprovalRecord>>(
            "list approvals",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText =
                    """
                    SELECT record FROM approvals
                    WHERE ($state IS NULL OR state = $state) AND ($agent IS NULL OR agent = $agent)
                      AND ($tool IS NULL OR tool = $tool) AND ($digest IS NULL OR digest = $digest)
                    ORDER BY created_at DESC, id DESC LIMIT $limit;
                    """;
                command.Parameters.AddWithValue("$state", query.State is { } st ? ApprovalNames.Name(st) : DBNull.Value);
                command.Parameters.AddWithValue("$agent", (object?)query.Agent ?? DBNull.Value);
                command.Parameters.AddWithValue("$tool", (object?)query.Tool ?? DBNull.Value);
                command.Parameters.AddWithValue("$digest", (object?)query.Digest ?? DBNull.Value);
                command.Parameters.AddWithValue("$limit", Math.Clamp(query.Limit, 1, 100_000));
                using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                var list = new List<ApprovalRecord>();
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    list.Add(ApprovalJson.Deserialize(reader.GetString(0)));
                }

                return list;
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> UpdateApprovalAsync(ApprovalRecord updated, int expectedRevision, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(updated);
        var written = await WriteAsync(
            "update an approval",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText =
                    """
                    UPDATE approvals SET state = $state, revision = $revision, record = $record
                    WHERE id = $id AND revision = $expected;
                    """;
                BindApproval(command, updated);
                command.Parameters.AddWithValue("$expected", expectedRevision);
                if (await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false) != 1)
                {
                    return false;
                }

                if (ApprovalRules.GrantOf(updated) is { } grant)
                {
                    using var insert = connection.CreateCommand();
                    insert.CommandText =
                        """
                        INSERT INTO grants (id, agent, until, created_at, record) VALUES ($id, $agent, $until, $created, $record)
                        ON CONFLICT (id) DO NOTHING;
                        """;
                    insert.Parameters.AddWithValue("$id", grant.Id);
                    insert.Parameters.AddWithValue("$agent", grant.Agent);
                    insert.Parameters.AddWithValue("$until", SqliteFormat.FormatTimestamp(grant.Until));
                    insert.Parameters.AddWithValue("$created", SqliteFormat.FormatTimestamp(grant.CreatedAt));
                    insert.Parameters.AddWithValue("$record", ApprovalJson.Serialize(grant));
                    await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                await InsertChangeAsync(connection, ChangeTopics.Approval, updated.Id, ApprovalPayload(updated), ct).ConfigureAwait(false);
                return true;
            },
            cancellationToken).ConfigureAwait(false);
        if (written)
        {
            _notifier.Pulse();
        }

        return written;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<RememberedGrant>> ListGrantsAsync(DateTimeOffset now, bool includeInactive = false, CancellationToken cancellationToken = default) =>
        await ReadAsync<IReadOnlyList<RememberedGrant>>(
            "list remembered grants",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText = includeInactive
                    ? "SELECT record, revoked_at FROM grants ORDER BY created_at DESC, id DESC;"
                    : "SELECT record, revoked_at FROM grants WHERE revoked_at IS NULL AND until > $now ORDER BY created_at DESC, id DESC;";
                command.Parameters.AddWithValue("$now", SqliteFormat.FormatTimestamp(now));
                using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                var list = new List<RememberedGrant>();
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    list.Add(ApprovalJson.DeserializeGrant(reader.GetString(0)));
                }

                return list;
            },
            cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<bool> RevokeGrantAsync(string id, string by, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        var revoked = await WriteAsync(
            "revoke a remembered grant",
            async (connection, ct) =>
            {
                using var read = connection.CreateCommand();
                read.CommandText = "SELECT record FROM grants WHERE id = $id AND revoked_at IS NULL AND until > $at;";
                read.Parameters.AddWithValue("$id", id);
                read.Parameters.AddWithValue("$at", SqliteFormat.FormatTimestamp(at));
                if (await read.ExecuteScalarAsync(ct).ConfigureAwait(false) is not string json)
                {
                    return false;
                }

                var grant = ApprovalJson.DeserializeGrant(json) with { RevokedAt = at, RevokedBy = by };
                using var command = connection.CreateCommand();
                command.CommandText = "UPDATE grants SET revoked_at = $at, record = $record WHERE id = $id;";
                command.Parameters.AddWithValue("$id", id);
                command.Parameters.AddWithValue("$at", SqliteFormat.FormatTimestamp(at));
                command.Parameters.AddWithValue("$record", ApprovalJson.Serialize(grant));
                await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                await InsertChangeAsync(connection, ChangeTopics.Approval, id, System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["event"] = "grant.revoked", ["agent"] = grant.Agent, ["by"] = by }), ct).ConfigureAwait(false);
                return true;
            },
            cancellationToken).ConfigureAwait(false);
        if (revoked)
        {
            _notifier.Pulse();
        }

        return revoked;
    }

    /// <inheritdoc />
    public async ValueTask<long> AddDataLabelAsync(DataLabelRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentException.ThrowIfNullOrEmpty(record.Id);
        ArgumentException.ThrowIfNullOrEmpty(record.Agent);
        ArgumentNullException.ThrowIfNull(record.Labels);
        ArgumentNullException.ThrowIfNull(record.Fingerprints);
        var labels = SqliteFormat.FormatGroups(record.Labels);
        var blob = new byte[record.Fingerprints.Count * sizeof(ulong)];
        for (var i = 0; i < record.Fingerprints.Count; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(blob.AsSpan(i * sizeof(ulong)), record.Fingerprints[i]);
        }

        var (sequence, added) = await WriteAsync(
            "record a data label",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText =
                    """
                    INSERT INTO data_labels (id, agent, session, labels, fingerprints, at, until)
                    VALUES ($id, $agent, $session, $labels, $fingerprints, $at, $until)
                    ON CONFLICT (id) DO NOTHING RETURNING seq;
                    """;
                command.Parameters.AddWithValue("$id", record.Id);
                command.Parameters.AddWithValue("$agent", record.Agent);
                command.Parameters.AddWithValue("$session", (object?)record.Session ?? DBNull.Value);
                command.Parameters.AddWithValue("$labels", labels);
                command.Parameters.AddWithValue("$fingerprints", blob);
                command.Parameters.AddWithValue("$at", SqliteFormat.FormatTimestamp(record.At));
                command.Parameters.AddWithValue("$until", SqliteFormat.FormatTimestamp(record.Until));
                if (await command.ExecuteScalarAsync(ct).ConfigureAwait(false) is { } inserted)
                {
                    var seq = Convert.ToInt64(inserted, CultureInfo.InvariantCulture);
                    var payload = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object> { ["id"] = record.Id, ["sequence"] = seq });
                    await InsertChangeAsync(connection, ChangeTopics.Label, record.Agent, payload, ct).ConfigureAwait(false);
                    return (seq, true);
                }

                using var existing = connection.CreateCommand();
                existing.CommandText = "SELECT seq FROM data_labels WHERE id = $id;";
                existing.Parameters.AddWithValue("$id", record.Id);
                return (Convert.ToInt64(await existing.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture), false);
            },
            cancellationToken).ConfigureAwait(false);
        if (added)
        {
            _notifier.Pulse();
        }

        return sequence;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<DataLabelRecord>> ListDataLabelsAsync(DateTimeOffset now, long afterSequence = 0, int limit = 1000, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var at = SqliteFormat.FormatTimestamp(now);
        return await ReadAsync<IReadOnlyList<DataLabelRecord>>(
            "list data labels",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText =
                    """
                    SELECT seq, id, agent, session, labels, fingerprints, at, until FROM data_labels
                    WHERE seq > $after AND until > $now ORDER BY seq LIMIT $limit;
                    """;
                command.Parameters.AddWithValue("$after", afterSequence);
                command.Parameters.AddWithValue("$now", at);
                command.Parameters.AddWithValue("$limit", limit);
                using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                var rows = new List<DataLabelRecord>();
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    var blob = (byte[])reader.GetValue(5);
                    var fingerprints = new ulong[blob.Length / sizeof(ulong)];
                    for (var i = 0; i < fingerprints.Length; i++)
                    {
                        fingerprints[i] = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(blob.AsSpan(i * sizeof(ulong)));
                    }

                    rows.Add(new DataLabelRecord(
                        reader.GetString(1),
                        reader.GetString(2),
                        reader.IsDBNull(3) ? null : reader.GetString(3),
                        SqliteFormat.ParseGroups(reader.GetString(4)),
                        fingerprints,
                        SqliteFormat.ParseTimestamp(reader.GetString(6)),
                        SqliteFormat.ParseTimestamp(reader.GetString(7)))
                    {
                        Sequence = reader.GetInt64(0),
                    });
                }

                return rows;
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<int> PruneDataLabelsAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var at = SqliteFormat.FormatTimestamp(now);
        return await WriteAsync(
            "prune data labels",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText = "DELETE FROM data_labels WHERE until <= $now;";
                command.Parameters.AddWithValue("$now", at);
                return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            },
            cancellationToken).ConfigureAwait(false);
    }

    private static void BindApproval(SqliteCommand command, ApprovalRecord approval)
    {
        command.Parameters.AddWithValue("$id", approval.Id);
        command.Parameters.AddWithValue("$state", ApprovalNames.Name(approval.State));
        command.Parameters.AddWithValue("$revision", approval.Revision);
        command.Parameters.AddWithValue("$agent", approval.Agent);
        command.Parameters.AddWithValue("$tool", approval.Tool);
        command.Parameters.AddWithValue("$digest", approval.Digest);
        command.Parameters.AddWithValue("$created", SqliteFormat.FormatTimestamp(approval.CreatedAt));
        command.Parameters.AddWithValue("$record", ApprovalJson.Serialize(approval));
    }

    private static string ApprovalPayload(ApprovalRecord a) =>
        System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object> { ["event"] = "approval", ["state"] = ApprovalNames.Name(a.State), ["agent"] = a.Agent, ["revision"] = a.Revision });

    private static string StopPayload(string what, string scope, string target, string by, string reason) =>
        System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["event"] = what, ["scope"] = scope, ["target"] = target, ["by"] = by, ["reason"] = reason });

    // Inside the caller's write transaction, so the record and its change commit together.
    private async ValueTask InsertChangeAsync(SqliteConnection connection, string topic, string key, string? payload, CancellationToken ct)
    {
        using var change = connection.CreateCommand();
        change.CommandText = "INSERT INTO changes (topic, key, payload, at) VALUES ($topic, $key, $payload, $at);";
        change.Parameters.AddWithValue("$topic", topic);
        change.Parameters.AddWithValue("$key", key);
        change.Parameters.AddWithValue("$payload", (object?)payload ?? DBNull.Value);
        change.Parameters.AddWithValue("$at", SqliteFormat.FormatTimestamp(_options.Time.GetUtcNow()));
        await change.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<long> PublishChangeAsync(string topic, string key, string? payload, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(key);
        var at = SqliteFormat.FormatTimestamp(_options.Time.GetUtcNow());
        var id = await WriteAsync(
            "publish a change",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText =
                    "INSERT INTO changes (topic, key, payload, at) VALUES ($topic, $key, $payload, $at) RETURNING id;";
                command.Parameters.AddWithValue("$topic", topic);
                command.Parameters.AddWithValue("$key", key);
                command.Parameters.AddWithValue("$payload", (object?)payload ?? DBNull.Value);
                command.Parameters.AddWithValue("$at", at);
                return Convert.ToInt64(await command.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
            },
            cancellationToken).ConfigureAwait(false);

        // Committed: wake this store's watchers now rather than at the next data_version poll.
        _notifier.Pulse();
        return id;
    }

    /// <inheritdoc />
    public async ValueTask<long> GetLatestChangeIdAsync(CancellationToken cancellationToken = default) =>
        await ReadAsync(
            "read the latest change id",
            async (connection, ct) =>
            {
                using var command = connection.CreateCommand();
                command.CommandText = "SELECT COALESCE(MAX(id), 0) FROM changes;";
                return Convert.ToInt64(await command.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
            },
            cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async IAsyncEnumerable<StoreChange> WatchAsync(long afterId, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ThrowIfNotReady();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposing.Token);
        var token = linked.Token;

        using var subscription = await SubscribeAsync(token).ConfigureAwait(false);
        if (subscription is null)
        {
            ThrowIfDisposedWhileWatching();
            yield break;
        }

        var last = afterId;
        while (true)
        {
            // Take the pulse before reading, so a change committed during the read or while the consumer
            // handles the batch wakes the next wait.
            var pulse = _notifier.NextPulse;
            var batch = await ReadBatchAsync(last, token).ConfigureAwait(false);
            if (batch is null)
            {
                ThrowIfDisposedWhileWatching();
                yield break;
            }

            foreach (var change in batch)
            {
                last = change.Id;
                yield return change;
            }

            if (batch.Count == WatchBatchSize)
            {
                continue;
            }

            if (!await WaitAsync(pulse, token).ConfigureAwait(false))
            {
                ThrowIfDisposedWhileWatching();
                yield break;
            }

            if (subscription.Fault is { } fault)
            {
                throw fault as StoreUnavailableException
                    ?? new StoreUnavailableException($"Watching the SQLite store '{FilePath}' failed: {fault.Message}", fault);
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _disposing.CancelAsync().ConfigureAwait(false);
        await _notifier.DisposeAsync().ConfigureAwait(false);
        _checkpointer?.Dispose();
        _disposing.Dispose();
        lock (_stopWriterLock)
        {
            CloseStopWriter();
        }

        // Close this file's idle pooled connections so the file can be moved or deleted.
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
    }

    private async ValueTask<ChangeNotifier.Subscription?> SubscribeAsync(CancellationToken token)
    {
        try
        {
            return await _notifier.SubscribeAsync(token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            return null;
        }
        catch (ObjectDisposedException)
        {
            throw new ObjectDisposedException(GetType().FullName);
        }
        catch (SqliteException ex)
        {
            throw Fault("watch changes", ex);
        }
    }

    /// <returns>The batch, or null when cancelled.</returns>
    private async ValueTask<List<StoreChange>?> ReadBatchAsync(long afterId, CancellationToken token)
    {
        try
        {
            using var connection = await OpenAsync(token).ConfigureAwait(false);
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT id, topic, key, payload, at FROM changes WHERE id > $after ORDER BY id LIMIT $limit;";
            command.Parameters.AddWithValue("$after", afterId);
            command.Parameters.AddWithValue("$limit", WatchBatchSize);
            using var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            var batch = new List<StoreChange>();
            while (await reader.ReadAsync(token).ConfigureAwait(false))
            {
                batch.Add(new StoreChange(
                    reader.GetInt64(0),
                    reader.GetString(1),
                    reader.GetString(2),
                    reader.IsDBNull(3) ? null : reader.GetString(3),
                    SqliteFormat.ParseTimestamp(reader.GetString(4))));
            }

            return batch;
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            return null;
        }
        catch (SqliteException ex)
        {
            throw Fault("watch changes", ex);
        }
    }

    private static async ValueTask<bool> WaitAsync(Task pulse, CancellationToken token)
    {
        try
        {
            await pulse.WaitAsync(token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            return false;
        }
    }

    private void ThrowIfDisposedWhileWatching() =>
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private ValueTask<T> ReadAsync<T>(string operation, Func<SqliteConnection, CancellationToken, ValueTask<T>> body, CancellationToken cancellationToken) =>
        RunAsync(operation, write: false, body, cancellationToken);

    private ValueTask<T> WriteAsync<T>(string operation, Func<SqliteConnection, CancellationToken, ValueTask<T>> body, CancellationToken cancellationToken) =>
        RunAsync(operation, write: true, body, cancellationToken);

    private async ValueTask<T> RunAsync<T>(string operation, bool write, Func<SqliteConnection, CancellationToken, ValueTask<T>> body, CancellationToken cancellationToken)
    {
        ThrowIfNotReady();
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            if (!write)
            {
                return await body(connection, cancellationToken).ConfigureAwait(false);
            }

            // When the write lock is free, write on the caller's thread: a hop to the thread pool is where an
            // approver's decision or a stop waits longest on a busy machine, behind the agents' calls. With fsync
            // durability, or when another connection writes, the write may wait: it leaves the caller's thread.
            if (!_options.FullSync && TryBeginNow(connection))
            {
                var db = connection.Handle!;
                try
                {
                    var done = await body(connection, cancellationToken).ConfigureAwait(false);
                    SqliteException.ThrowExceptionForRC(raw.sqlite3_exec(db, "COMMIT;"), db);
                    return done;
                }
                catch
                {
                    raw.sqlite3_exec(db, "ROLLBACK;");
                    throw;
                }
            }

            // Writes may wait up to BusyTimeout for another writer, and Microsoft.Data.Sqlite waits synchronously:
            // leave the caller's thread first so its task is returned at once.
            await Task.CompletedTask.ConfigureAwait(ConfigureAwaitOptions.ForceYielding);

            // BEGIN IMMEDIATE: take the write lock up front (waiting on busy_timeout) instead of upgrading a
            // read snapshot later, which SQLite may refuse with SQLITE_BUSY_SNAPSHOT under contention.
            using var transaction = connection.BeginTransaction(deferred: false);
            var result = await body(connection, cancellationToken).ConfigureAwait(false);
            transaction.Commit();
            return result;
        }
        catch (SqliteException ex)
        {
            throw Fault(operation, ex);
        }
    }

    private bool TryBeginNow(SqliteConnection connection) => ImmediateTransaction.TryBegin(connection.Handle!, _options.BusyTimeout);

    /// <summary>A pooled connection with the per-connection pragmas applied (internal for tests).</summary>
    internal async ValueTask<SqliteConnection> OpenAsync(CancellationToken cancellationToken) =>
        await OpenAsync(_connectionString, cancellationToken).ConfigureAwait(false);

    private async ValueTask<SqliteConnection> OpenDedicatedAsync(CancellationToken cancellationToken) =>
        await OpenAsync(_dedicatedConnectionString, cancellationToken).ConfigureAwait(false);

    private async ValueTask<SqliteConnection> OpenAsync(string connectionString, CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);

            // Pooled connections keep their native handle, and with it these settings: apply them once per handle.
            var handle = connection.Handle!;
            if (!AppliedPragmas.TryGetValue(handle, out var applied) || !string.Equals(applied, _connectionPragmas, StringComparison.Ordinal))
            {
                using var command = connection.CreateCommand();
                command.CommandText = _connectionPragmas;
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                AppliedPragmas.AddOrUpdate(handle, _connectionPragmas);
            }

            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async ValueTask<object?> ScalarAsync(SqliteConnection connection, string sql, CancellationToken cancellationToken)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
    }

    private static Principal ReadPrincipal(SqliteDataReader reader) => new(
        SqliteFormat.ParseKind(reader.GetString(0)),
        reader.GetString(1),
        SqliteFormat.ParseGroups(reader.GetString(2)),
        SqliteFormat.ParseTimestamp(reader.GetString(3)),
        reader.IsDBNull(4) ? null : SqliteFormat.ParseTimestamp(reader.GetString(4)));

    private static byte[] ToArray(ReadOnlyMemory<byte> memory) =>
        MemoryMarshal.TryGetArray(memory, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : memory.ToArray();

    private void ThrowIfNotReady()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (!_initialized)
        {
            throw new InvalidOperationException("Call InitializeAsync before using the store.");
        }
    }

    private StoreUnavailableException Fault(string operation, SqliteException ex) =>
        new(
            $"The SQLite store '{FilePath}' could not {operation}: {ex.Message} (SQLite error {ex.SqliteErrorCode}, extended {ex.SqliteExtendedErrorCode}).",
            ex);
}
