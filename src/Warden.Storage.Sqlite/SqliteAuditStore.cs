using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Data.Sqlite;
using SQLitePCL;
using Warden.Core.Audit;
using Warden.Core.Storage;

namespace Warden.Storage.Sqlite;

/// <summary>
/// <see cref="IAuditStore"/> on its own SQLite file (<c>audit.db</c> in the data folder), apart from
/// <c>warden.db</c>: audit appends never queue behind administrative writes or the change feed, the file can get
/// its own durability (<c>synchronous=FULL</c> for <c>audit.durability: fsync</c>) and be archived on its own,
/// and <c>warden audit verify</c> needs nothing else. See docs/audit.md.
/// </summary>
/// <remarks>
/// Appends go through one dedicated connection; each is one <c>BEGIN IMMEDIATE</c> transaction that reads the head
/// row, numbers, chains and inserts the events and writes the new head, so the order of record is the sequence
/// order even with several processes on the file. Before each append the writer checks that the file is still
/// there: a deleted store must fail calls, not swallow records into an unlinked file. After a failed append the
/// connection is reopened. Reads use pooled connections and never block the writer (WAL).
/// </remarks>
public sealed class SqliteAuditStore : IAuditStore
{
    private const string Columns = "seq, time, kind, actor, agent, session, call, server, tool, effect, rule, policy, context, args, result, outcome, dur_us, detail, prev, hash";

    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE IF NOT EXISTS audit (
            seq      INTEGER PRIMARY KEY,   -- position in the chain, from 1
            time     TEXT    NOT NULL,      -- ISO 8601 UTC, 100 ns
            kind     TEXT    NOT NULL,
            actor    TEXT    NOT NULL,
            agent    TEXT,
            session  TEXT,
            call     TEXT,
            server   TEXT,
            tool     TEXT,
            effect   TEXT,
            rule     TEXT,
            policy   TEXT,
            context  TEXT,                  -- JSON
            args     TEXT,                  -- JSON, masked values as hmac:...
            result   TEXT,                  -- hmac:... digest of the result
            outcome  TEXT,
            dur_us   INTEGER,
            detail   TEXT,
            prev     BLOB    NOT NULL,      -- SHA-256 of the previous record's canonical encoding
            hash     BLOB    NOT NULL       -- SHA-256 of this record's canonical encoding
        );
        CREATE INDEX IF NOT EXISTS audit_agent ON audit (agent, seq);
        CREATE INDEX IF NOT EXISTS audit_time ON audit (time);
        CREATE INDEX IF NOT EXISTS audit_call ON audit (call) WHERE call IS NOT NULL;
        CREATE TABLE IF NOT EXISTS audit_head (
            id    INTEGER PRIMARY KEY CHECK (id = 1),
            seq   INTEGER NOT NULL,
            hash  BLOB    NOT NULL,
            time  TEXT    NOT NULL
        );
        """,
    ];

    private readonly SqliteAuditStoreOptions _options;
    private readonly string _connectionString;
    private readonly string _writerConnectionString;
    private readonly Lock _writeLock = new();
    private SqliteConnection? _writer;
    private readonly string _filePath;

    // The writer's statements, prepared once per connection and driven through SQLitePCL directly: binding through
    // Microsoft.Data.Sqlite's parameters allocated a binder and a UTF-8 copy per value and looked each parameter up
    // by name, for twenty values per record, on the path every forwarded call waits for.
    private sqlite3_stmt? _insert;
    private sqlite3_stmt? _readHead;
    private sqlite3_stmt? _writeHead;
    private bool _initialized;
    private WalCheckpointer? _checkpointer;
    private int _disposed;

    internal WalCheckpointer? Checkpointer => _checkpointer;

    /// <summary>Creates the store; nothing touches the file until <see cref="InitializeAsync"/>.</summary>
    public SqliteAuditStore(SqliteAuditStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Path);
        _options = options;
        _filePath = System.IO.Path.GetFullPath(options.Path);
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = _filePath,
            Mode = options.ReadOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = Math.Max(1, (int)Math.Ceiling(options.BusyTimeout.TotalSeconds)),
        };
        _connectionString = builder.ToString();
        builder.Pooling = false;
        _writerConnectionString = builder.ToString();
    }

    /// <summary>Tests force the number of ranges verify splits the log into.</summary>
    internal int? VerifyParts { get; set; }

    /// <summary>Full path of the database file.</summary>
    public string FilePath => _filePath;

    /// <inheritdoc />
    public ValueTask InitializeAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_options.ReadOnly)
        {
            if (!File.Exists(FilePath))
            {
                throw new StoreUnavailableException($"The audit store '{FilePath}' does not exist.");
            }

            _initialized = true;
            return ValueTask.CompletedTask;
        }

        try
        {
            using var connection = Open(_connectionString);
            Exec(connection, "PRAGMA journal_mode = WAL;");
            using var tx = connection.BeginTransaction(deferred: false);
            var version = Convert.ToInt32(Scalar(connection, "PRAGMA user_version;"), CultureInfo.InvariantCulture);
            if (version > Migrations.Length)
            {
                throw new StoreUnavailableException($"The audit store '{FilePath}' has schema version {version}, newer than this Warden understands. Upgrade Warden.");
            }

            for (var v = version; v < Migrations.Length; v++)
            {
                Exec(connection, Migrations[v]);
            }

            Exec(connection, string.Create(CultureInfo.InvariantCulture, $"PRAGMA user_version = {Migrations.Length};"));
            tx.Commit();
            if (_options.CheckpointInterval > TimeSpan.Zero && Volatile.Read(ref _checkpointer) is null)
            {
                var checkpointer = new WalCheckpointer(FilePath, _options.CheckpointInterval);
                if (Interlocked.CompareExchange(ref _checkpointer, checkpointer, null) is not null)
                {
                    checkpointer.Dispose();
                }
            }

            _initialized = true;
            return ValueTask.CompletedTask;
        }
        catch (SqliteException ex)
        {
            throw new StoreUnavailableException($"The audit store '{FilePath}' could not be initialized: {ex.Message}", ex);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<AuditEvent>> AppendAsync(IReadOnlyList<AuditEvent> events, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(events);
        EnsureWritable();
        lock (_writeLock)
        {
            try
            {
                var connection = WriterForAppend();
                using var tx = connection.BeginTransaction(deferred: false);
                var written = WriteLocked(events);
                tx.Commit();
                return ValueTask.FromResult<IReadOnlyList<AuditEvent>>(written);
            }
            catch (Exception ex) when (ex is SqliteException or IOException or StoreUnavailableException or InvalidOperationException)
            {
                throw Failed(ex);
            }
        }
    }

    /// <summary>
    /// In <c>process</c> durability, appends on the caller's thread when the write lock is free at once (the
    /// commit writes the WAL without an fsync, so it cannot stall on the disk); with <c>fsync</c>, or when another
    /// connection holds the lock, returns null and the writer thread appends instead, waiting as long as it must.
    /// </summary>
    public IReadOnlyList<AuditEvent>? TryAppendNow(IReadOnlyList<AuditEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (_options.FullSync)
        {
            return null;
        }

        EnsureWritable();
        if (!_writeLock.TryEnter())
        {
            return null;
        }

        try
        {
            var connection = WriterForAppend();
            var db = connection.Handle!;

            // Busy means someone else writes, and the caller must not wait: the writer thread will.
            return ImmediateTransaction.TryBegin(db, _options.BusyTimeout)
                ? ImmediateTransaction.Complete(db, (Store: this, Events: events), static s => s.Store.WriteLocked(s.Events))
                : null;
        }
        catch (Exception ex) when (ex is SqliteException or IOException or StoreUnavailableException or InvalidOperationException)
        {
            throw Failed(ex);
        }
        finally
        {
            _writeLock.Exit();
        }
    }

    private void EnsureWritable()
    {
        EnsureReady();
        if (_options.ReadOnly)
        {
            throw new InvalidOperationException("The audit store was opened read-only.");
        }
    }

    // Start afresh next time: a connection that saw an I/O error may hold a broken transaction.
    private StoreUnavailableException Failed(Exception ex)
    {
        CloseWriter();
        return ex as StoreUnavailableException ?? new StoreUnavailableException($"The audit store '{FilePath}' could not write: {ex.Message}", ex);
    }

    private SqliteConnection WriterForAppend()
    {
        // A deleted file keeps working through an open handle and its records would vanish with it.
        if (!File.Exists(FilePath))
        {
            throw new StoreUnavailableException($"The audit store '{FilePath}' is gone (deleted or moved); refusing to write records nobody could read.");
        }

        return Writer();
    }

    // Inside a write transaction (tx, or one begun natively when null): reads the head, numbers, chains and inserts
    // the events, and writes the new head.
    private AuditEvent[] WriteLocked(IReadOnlyList<AuditEvent> events)
    {
        var db = _writer!.Handle!;
        var written = new AuditEvent[events.Count];
        long seq = 0;
        var prev = new byte[AuditCanonical.HashSize];
        var read = _readHead!;
        try
        {
            var rc = raw.sqlite3_step(read);
            if (rc == raw.SQLITE_ROW)
            {
                seq = raw.sqlite3_column_int64(read, 0);
                prev = raw.sqlite3_column_blob(read, 1).ToArray();
            }
            else if (rc != raw.SQLITE_DONE)
            {
                SqliteException.ThrowExceptionForRC(rc, db);
            }
        }
        finally
        {
            raw.sqlite3_reset(read);
        }

        Span<byte> time = stackalloc byte[AuditCanonical.TimeLength];
        var insert = _insert!;
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            seq++;
            var hash = AuditCanonical.ComputeHash(e, seq, prev);
            raw.sqlite3_bind_int64(insert, 1, seq);
            raw.sqlite3_bind_text(insert, 2, time[..AuditCanonical.FormatTime(e.Time, time)]);
            Text(insert, 3, e.Kind);
            Text(insert, 4, e.Actor);
            Text(insert, 5, e.Agent);
            Text(insert, 6, e.Session);
            Text(insert, 7, e.Call);
            Text(insert, 8, e.Server);
            Text(insert, 9, e.Tool);
            Text(insert, 10, e.Effect);
            Text(insert, 11, e.Rule);
            Text(insert, 12, e.PolicyVersion);
            Text(insert, 13, e.Context);
            Text(insert, 14, e.Arguments);
            Text(insert, 15, e.ResultDigest);
            Text(insert, 16, e.Outcome);
            if (e.DurationMicros is { } d)
            {
                raw.sqlite3_bind_int64(insert, 17, d);
            }
            else
            {
                raw.sqlite3_bind_null(insert, 17);
            }

            Text(insert, 18, e.Detail);
            raw.sqlite3_bind_blob(insert, 19, prev);
            raw.sqlite3_bind_blob(insert, 20, hash);
            NativeStatements.Step(insert, db);
            written[i] = e with { Seq = seq, PrevHash = prev, Hash = hash, Time = e.Time.ToUniversalTime() };
            prev = hash;
        }

        var head = _writeHead!;
        raw.sqlite3_bind_int64(head, 1, seq);
        raw.sqlite3_bind_blob(head, 2, prev);
        raw.sqlite3_bind_text(head, 3, time[..AuditCanonical.FormatTime(DateTimeOffset.UtcNow, time)]);
        NativeStatements.Step(head, db);
        return written;
    }

    // UTF-16 straight from the string: SQLite converts it while copying, with no managed copy in between.
    private static void Text(sqlite3_stmt stmt, int index, string? value)
    {
        if (value is null)
        {
            raw.sqlite3_bind_null(stmt, index);
        }
        else
        {
            raw.sqlite3_bind_text16(stmt, index, value.AsSpan());
        }
    }

    /// <inheritdoc />
    public ValueTask<AuditHead> GetHeadAsync(CancellationToken cancellationToken = default)
    {
        EnsureReady();
        try
        {
            using var connection = Open(_connectionString);
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT seq, hash FROM audit_head WHERE id = 1;";
            using var reader = command.ExecuteReader();
            return ValueTask.FromResult(reader.Read() ? new AuditHead(reader.GetInt64(0), (byte[])reader.GetValue(1)) : AuditHead.Empty);
        }
        catch (SqliteException ex)
        {
            throw new StoreUnavailableException($"The audit store '{FilePath}' could not be read: {ex.Message}", ex);
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<AuditEvent> ReadAsync(long fromSeq = 1, long? toSeq = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        EnsureReady();
        await Task.CompletedTask.ConfigureAwait(false);
        using var connection = OpenOrThrow();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM audit WHERE seq >= $from AND seq <= $to ORDER BY seq;";
        command.Parameters.AddWithValue("$from", fromSeq);
        command.Parameters.AddWithValue("$to", toSeq ?? long.MaxValue);
        SqliteDataReader reader;
        try
        {
            reader = command.ExecuteReader();
        }
        catch (SqliteException ex)
        {
            throw new StoreUnavailableException($"The audit store '{FilePath}' could not be read: {ex.Message}", ex);
        }

        using (reader)
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                AuditEvent e;
                try
                {
                    if (!reader.Read())
                    {
                        yield break;
                    }

                    e = ReadEvent(reader);
                }
                catch (SqliteException ex)
                {
                    throw new StoreUnavailableException($"The audit store '{FilePath}' could not be read: {ex.Message}", ex);
                }

                yield return e;
            }
        }
    }

    /// <summary>Reads records synchronously in sequence order (verify, export).</summary>
    public IEnumerable<AuditEvent> Read(long fromSeq = 1, long? toSeq = null, DateTimeOffset? from = null, DateTimeOffset? to = null)
    {
        EnsureReady();
        using var connection = OpenOrThrow();
        using var command = connection.CreateCommand();
        var sql = new StringBuilder($"SELECT {Columns} FROM audit WHERE seq >= $from AND seq <= $to");
        command.Parameters.AddWithValue("$from", fromSeq);
        command.Parameters.AddWithValue("$to", toSeq ?? long.MaxValue);
        if (from is { } f)
        {
            sql.Append(" AND time >= $tfrom");
            command.Parameters.AddWithValue("$tfrom", AuditCanonical.FormatTime(f));
        }

        if (to is { } t)
        {
            sql.Append(" AND time < $tto");
            command.Parameters.AddWithValue("$tto", AuditCanonical.FormatTime(t));
        }

        command.CommandText = sql.Append(" ORDER BY seq;").ToString();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            yield return ReadEvent(reader);
        }
    }

    /// <summary>
    /// Verifies the whole log against its head. Hashes straight from SQLite's buffers without building events,
    /// in as many sequence ranges as there are cores (each record's hash depends only on its own row; the links
    /// between ranges are checked after). At the first bad record it hands the rest to <see cref="AuditVerifier"/>,
    /// which names the damage. Records appended while it runs are not looked at.
    /// </summary>
    public AuditVerification Verify()
    {
        EnsureReady();
        AuditHead head;
        long maxSeq;
        try
        {
            using var connection = OpenOrThrow();
            using var tx = connection.BeginTransaction(deferred: true);
            using var command = connection.CreateCommand();
            command.Transaction = tx;
            command.CommandText = "SELECT seq, hash FROM audit_head WHERE id = 1;";
            using (var reader = command.ExecuteReader())
            {
                head = reader.Read() ? new AuditHead(reader.GetInt64(0), (byte[])reader.GetValue(1)) : AuditHead.Empty;
            }

            // Records past the head are tampering, but must be looked at too: read up to the larger of both.
            command.CommandText = "SELECT coalesce(max(seq), 0) FROM audit;";
            maxSeq = Math.Max(head.Seq, Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture));
        }
        catch (SqliteException ex)
        {
            throw new StoreUnavailableException($"The audit store '{FilePath}' could not be read: {ex.Message}", ex);
        }

        var parts = VerifyParts ?? (maxSeq < 20_000 ? 1 : Math.Clamp(Environment.ProcessorCount, 1, 8));
        var ranges = new RangeScan[parts];
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, i =>
        {
            var lo = i == 0 ? long.MinValue : 1 + (maxSeq * i / parts);
            var hi = i == parts - 1 ? long.MaxValue : maxSeq * (i + 1) / parts;
            ranges[i] = ScanRange(lo, hi);
        });

        // Join the ranges in order: each must start where the previous ended.
        long position = 0, lastSeq = 0;
        var lastHash = AuditCanonical.GenesisHash.ToArray();
        var lastPrev = AuditCanonical.GenesisHash.ToArray();
        var bad = false;
        foreach (var r in ranges)
        {
            if (r.Count == 0 && !r.Bad)
            {
                continue;
            }

            if (r.FirstSeq != lastSeq + 1 || !r.FirstPrev.AsSpan().SequenceEqual(lastHash))
            {
                bad = true;
                break;
            }

            position += r.Count;
            if (r.Count > 0)
            {
                lastSeq = r.LastSeq;
                lastHash = r.LastHash;
                lastPrev = r.LastPrev;
            }

            if (r.Bad)
            {
                bad = true;
                break;
            }
        }

        if (!bad)
        {
            var end = AuditVerifier.Verify([], head, new AuditHead(lastSeq, lastHash));
            return end with
            {
                Verified = position,
                BadPosition = end.BadPosition is { } p && p >= 0 ? position - 1 : end.BadPosition,
                Message = end.Ok ? $"{position} records verified" : end.Message,
            };
        }

        // Name the damage: the pure verifier takes over from the record before the last good one, so that a
        // record edited with its hash recomputed (which only its successor betrays) is still named.
        var anchor = lastSeq >= 1 ? new AuditHead(lastSeq - 1, lastPrev) : AuditHead.Empty;
        var offset = lastSeq >= 1 ? position - 1 : 0;
        var result = AuditVerifier.Verify(Read(anchor.Seq + 1), head, anchor);
        return result with
        {
            Verified = result.Verified + offset,
            BadPosition = result.BadPosition is { } b && b >= 0 ? b + offset : result.BadPosition,
        };
    }

    private sealed class RangeScan
    {
        public long Count;
        public long FirstSeq;
        public byte[] FirstPrev = [];
        public long LastSeq;
        public byte[] LastHash = [];
        public byte[] LastPrev = [];
        public bool Bad;
    }

    /// <summary>Checks the records with <paramref name="lo"/> &lt;= seq &lt;= <paramref name="hi"/> among themselves; stops at the first bad one.</summary>
    private RangeScan ScanRange(long lo, long hi)
    {
        var scan = new RangeScan();
        using var connection = OpenOrThrow();
        var db = connection.Handle!;
        if (raw.sqlite3_prepare_v2(db, $"SELECT {Columns} FROM audit WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq;", out var stmt) != raw.SQLITE_OK)
        {
            throw new StoreUnavailableException($"The audit store '{FilePath}' could not be read: {raw.sqlite3_errmsg(db).utf8_to_string()}");
        }

        using (stmt)
        {
            raw.sqlite3_bind_int64(stmt, 1, lo);
            raw.sqlite3_bind_int64(stmt, 2, hi);
            Span<byte> computed = stackalloc byte[AuditCanonical.HashSize];
            var lastHash = new byte[AuditCanonical.HashSize];
            var lastPrev = new byte[AuditCanonical.HashSize];
            long lastSeq = 0;
            int rc;
            while ((rc = raw.sqlite3_step(stmt)) == raw.SQLITE_ROW)
            {
                var r = new AuditRecordSpans { Seq = raw.sqlite3_column_int64(stmt, 0) };
                r.Time = Text(stmt, 1, 0, ref r.Present);
                r.Kind = Text(stmt, 2, 0, ref r.Present);
                r.Actor = Text(stmt, 3, 0, ref r.Present);
                r.Agent = Text(stmt, 4, AuditRecordSpans.Field.Agent, ref r.Present);
                r.Session = Text(stmt, 5, AuditRecordSpans.Field.Session, ref r.Present);
                r.Call = Text(stmt, 6, AuditRecordSpans.Field.Call, ref r.Present);
                r.Server = Text(stmt, 7, AuditRecordSpans.Field.Server, ref r.Present);
                r.Tool = Text(stmt, 8, AuditRecordSpans.Field.Tool, ref r.Present);
                r.Effect = Text(stmt, 9, AuditRecordSpans.Field.Effect, ref r.Present);
                r.Rule = Text(stmt, 10, AuditRecordSpans.Field.Rule, ref r.Present);
                r.Policy = Text(stmt, 11, AuditRecordSpans.Field.Policy, ref r.Present);
                r.Context = Text(stmt, 12, AuditRecordSpans.Field.Context, ref r.Present);
                r.Args = Text(stmt, 13, AuditRecordSpans.Field.Args, ref r.Present);
                r.Result = Text(stmt, 14, AuditRecordSpans.Field.Result, ref r.Present);
                r.Outcome = Text(stmt, 15, AuditRecordSpans.Field.Outcome, ref r.Present);
                var durType = raw.sqlite3_column_type(stmt, 16);
                r.DurationMicros = durType == raw.SQLITE_NULL ? null : raw.sqlite3_column_int64(stmt, 16);
                r.Detail = Text(stmt, 17, AuditRecordSpans.Field.Detail, ref r.Present);
                r.Prev = raw.sqlite3_column_blob(stmt, 18);
                r.Hash = raw.sqlite3_column_blob(stmt, 19);
                AuditCanonical.ComputeHash(r, computed);
                var first = scan.Count == 0;
                if (first)
                {
                    scan.FirstSeq = r.Seq;
                    scan.FirstPrev = r.Prev.ToArray();
                }

                if (durType is not (raw.SQLITE_NULL or raw.SQLITE_INTEGER) || !computed.SequenceEqual(r.Hash)
                    || (!first && (r.Seq != lastSeq + 1 || !r.Prev.SequenceEqual(lastHash))))
                {
                    scan.Bad = true;
                    break;
                }

                lastSeq = r.Seq;
                r.Prev.CopyTo(lastPrev);
                r.Hash.CopyTo(lastHash);
                scan.Count++;
            }

            if (!scan.Bad && rc != raw.SQLITE_DONE)
            {
                throw new StoreUnavailableException($"The audit store '{FilePath}' could not be read: {raw.sqlite3_errmsg(db).utf8_to_string()}");
            }

            scan.LastSeq = lastSeq;
            scan.LastHash = lastHash;
            scan.LastPrev = lastPrev;
        }

        return scan;
    }

    private static ReadOnlySpan<byte> Text(sqlite3_stmt stmt, int column, AuditRecordSpans.Field field, scoped ref AuditRecordSpans.Field present)
    {
        if (raw.sqlite3_column_type(stmt, column) == raw.SQLITE_NULL)
        {
            return default;
        }

        present |= field;
        return raw.sqlite3_column_blob(stmt, column);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<AuditEvent>> QueryAsync(AuditQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        EnsureReady();
        try
        {
            using var connection = Open(_connectionString);
            using var command = connection.CreateCommand();
            var where = new List<string>();
            void Eq(string column, string? value)
            {
                if (value is not null)
                {
                    where.Add($"{column} = ${column}");
                    command.Parameters.AddWithValue("$" + column, value);
                }
            }

            Eq("agent", query.Agent);
            Eq("session", query.Session);
            Eq("server", query.Server);
            Eq("tool", query.Tool);
            Eq("effect", query.Effect);
            Eq("rule", query.Rule);
            Eq("call", query.Call);
            if (query.Kind is { } kind)
            {
                if (kind.EndsWith('*'))
                {
                    where.Add("substr(kind, 1, length($kindp)) = $kindp");
                    command.Parameters.AddWithValue("$kindp", kind[..^1]);
                }
                else
                {
                    Eq("kind", kind);
                }
            }

            if (query.From is { } from)
            {
                where.Add("time >= $tfrom");
                command.Parameters.AddWithValue("$tfrom", AuditCanonical.FormatTime(from));
            }

            if (query.To is { } to)
            {
                where.Add("time < $tto");
                command.Parameters.AddWithValue("$tto", AuditCanonical.FormatTime(to));
            }

            if (query.AfterSeq is { } after)
            {
                where.Add("seq > $after");
                command.Parameters.AddWithValue("$after", after);
            }

            if (!string.IsNullOrEmpty(query.Text))
            {
                where.Add("(instr(lower(coalesce(tool,'') || ' ' || coalesce(rule,'') || ' ' || coalesce(args,'') || ' ' || coalesce(detail,'') || ' ' || actor || ' ' || kind), lower($text)) > 0)");
                command.Parameters.AddWithValue("$text", query.Text);
            }

            var limit = Math.Clamp(query.Limit, 1, 10_000);
            var filter = where.Count == 0 ? "" : " WHERE " + string.Join(" AND ", where);
            command.CommandText = query.Newest
                ? $"SELECT * FROM (SELECT {Columns} FROM audit{filter} ORDER BY seq DESC LIMIT {limit}) ORDER BY seq;"
                : $"SELECT {Columns} FROM audit{filter} ORDER BY seq LIMIT {limit};";
            using var reader = command.ExecuteReader();
            var list = new List<AuditEvent>();
            while (reader.Read())
            {
                list.Add(ReadEvent(reader));
            }

            return ValueTask.FromResult<IReadOnlyList<AuditEvent>>(list);
        }
        catch (SqliteException ex)
        {
            throw new StoreUnavailableException($"The audit store '{FilePath}' could not be read: {ex.Message}", ex);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            lock (_writeLock)
            {
                CloseWriter();
            }

            _checkpointer?.Dispose();
            using var probe = new SqliteConnection(_connectionString);
            SqliteConnection.ClearPool(probe);
        }

        return ValueTask.CompletedTask;
    }

    private static AuditEvent ReadEvent(SqliteDataReader r) => new()
    {
        Seq = r.GetInt64(0),
        Time = ParseTimeOrMin(r.GetString(1)),
        Kind = r.GetString(2),
        Actor = r.GetString(3),
        Agent = Str(r, 4),
        Session = Str(r, 5),
        Call = Str(r, 6),
        Server = Str(r, 7),
        Tool = Str(r, 8),
        Effect = Str(r, 9),
        Rule = Str(r, 10),
        PolicyVersion = Str(r, 11),
        Context = Str(r, 12),
        Arguments = Str(r, 13),
        ResultDigest = Str(r, 14),
        Outcome = Str(r, 15),
        DurationMicros = r.IsDBNull(16) ? null : r.GetInt64(16),
        Detail = Str(r, 17),
        PrevHash = r.IsDBNull(18) ? ReadOnlyMemory<byte>.Empty : (byte[])r.GetValue(18),
        Hash = r.IsDBNull(19) ? ReadOnlyMemory<byte>.Empty : (byte[])r.GetValue(19),
    };

    // A record whose time was edited into something unreadable must fail verification, not crash it.
    private static DateTimeOffset ParseTimeOrMin(string text)
    {
        try
        {
            return AuditCanonical.ParseTime(text);
        }
        catch (FormatException)
        {
            return DateTimeOffset.MinValue;
        }
    }

    private static string? Str(SqliteDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private void EnsureReady()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (!_initialized)
        {
            throw new InvalidOperationException("Call InitializeAsync first.");
        }
    }

    private SqliteConnection OpenOrThrow()
    {
        try
        {
            return Open(_connectionString);
        }
        catch (SqliteException ex)
        {
            throw new StoreUnavailableException($"The audit store '{FilePath}' could not be opened: {ex.Message}", ex);
        }
    }

    private SqliteConnection Open(string connectionString)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            connection.Open();
            Exec(connection, string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout = {(long)_options.BusyTimeout.TotalMilliseconds};"));
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private SqliteConnection Writer()
    {
        if (_writer is not null)
        {
            return _writer;
        }

        var connection = Open(_writerConnectionString);
        Exec(connection, $"PRAGMA synchronous = {(_options.FullSync ? "FULL" : "NORMAL")};");
        if (_options.CheckpointInterval > TimeSpan.Zero)
        {
            Exec(connection, WalCheckpointer.WriterPragmas);
        }
        var db = connection.Handle!;
        _insert = NativeStatements.Prepare(db, $"INSERT INTO audit ({Columns}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20);");
        _readHead = NativeStatements.Prepare(db, "SELECT seq, hash FROM audit_head WHERE id = 1;");
        _writeHead = NativeStatements.Prepare(db, "INSERT INTO audit_head (id, seq, hash, time) VALUES (1, ?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, time = excluded.time;");
        _writer = connection;
        return connection;
    }

    private void CloseWriter()
    {
        // Statements before their connection: a connection closes only when nothing is prepared on it.
        _insert?.Dispose();
        _readHead?.Dispose();
        _writeHead?.Dispose();
        _writer?.Dispose();
        _insert = _readHead = _writeHead = null;
        _writer = null;
    }

    private static void Exec(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
