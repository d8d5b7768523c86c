using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;
using Warden.Core.Identity;
using Warden.Core.Storage;
using Warden.Core.Stops;
using Warden.Storage.Contract;

namespace Warden.Storage.Sqlite.Tests;

/// <summary>What is specific to the SQLite store: the file format, pragmas, locking and faults.</summary>
public sealed class SqliteWardenStoreTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(2);
    private readonly string _folder = TempFolder.Create();
    private readonly List<SqliteWardenStore> _stores = [];

    private string DbPath => Path.Combine(_folder, SqliteStoreOptions.DefaultFileName);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }

        TempFolder.Delete(_folder);
    }

    [Fact]
    public async Task Initialize_creates_a_WAL_file_at_the_current_schema_version()
    {
        var store = await OpenAsync();
        Assert.Equal(DbPath, store.FilePath);
        Assert.True(File.Exists(DbPath));

        using var raw = Raw();
        Assert.Equal("wal", Scalar(raw, "PRAGMA journal_mode;"));
        Assert.Equal(SqliteSchema.CurrentVersion, Convert.ToInt32(Scalar(raw, "PRAGMA user_version;")));
        Assert.Equal(
            "approvals,changes,data_labels,grants,principals,state,stops",
            Scalar(raw, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name);"));
    }

    [Fact]
    public void ForDataFolder_uses_warden_db()
    {
        Assert.Equal(Path.Combine("/data", "warden.db"), SqliteStoreOptions.ForDataFolder("/data").Path);
    }

    [Theory]
    [InlineData(false, 1L)] // NORMAL
    [InlineData(true, 2L)]  // FULL
    public async Task Connections_get_synchronous_and_busy_timeout(bool fullSync, long expectedSynchronous)
    {
        var store = await OpenAsync(new SqliteStoreOptions { Path = DbPath, FullSync = fullSync, BusyTimeout = TimeSpan.FromSeconds(3) });
        using var connection = await store.OpenAsync(CancellationToken.None);
        Assert.Equal(expectedSynchronous, Scalar(connection, "PRAGMA synchronous;"));
        Assert.Equal(3000L, Scalar(connection, "PRAGMA busy_timeout;"));
    }

    [Fact]
    public async Task Instances_with_different_settings_on_one_file_keep_their_own_settings()
    {
        var normal = await OpenAsync(new SqliteStoreOptions { Path = DbPath });
        var full = await OpenAsync(new SqliteStoreOptions { Path = DbPath, FullSync = true });
        for (var i = 0; i < 5; i++)
        {
            // Both draw on the same connection pool; each must see its own settings every time.
            using (var connection = await normal.OpenAsync(CancellationToken.None))
            {
                Assert.Equal(1L, Scalar(connection, "PRAGMA synchronous;"));
            }

            using (var connection = await full.OpenAsync(CancellationToken.None))
            {
                Assert.Equal(2L, Scalar(connection, "PRAGMA synchronous;"));
            }
        }
    }

    [Fact]
    public async Task Token_hash_lookup_uses_an_index()
    {
        var store = await OpenAsync();
        using var connection = await store.OpenAsync(CancellationToken.None);
        using var command = connection.CreateCommand();
        command.CommandText = "EXPLAIN QUERY PLAN SELECT kind FROM principals WHERE token_hash = x'00' AND revoked_at IS NULL;";
        using var reader = command.ExecuteReader();
        Assert.True(reader.Read());
        var detail = reader.GetString(3);
        Assert.Contains("USING INDEX", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Using_the_store_before_InitializeAsync_is_a_clear_error()
    {
        var store = Track(new SqliteWardenStore(new SqliteStoreOptions { Path = DbPath }));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await store.GetStateAsync("k"));
        await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await foreach (var unused in store.WatchAsync(0))
            {
            }
        });
    }

    [Fact]
    public async Task A_file_of_the_previous_version_is_migrated_and_keeps_its_rows()
    {
        // A store written before data labels existed (schema 3), with a stop in force.
        using (var raw = Raw())
        {
            foreach (var migration in SqliteSchema.Migrations.Take(3))
            {
                Scalar(raw, migration);
            }

            Scalar(raw, "PRAGMA user_version = 3;");
            Scalar(raw, "INSERT INTO stops (id, scope, target, issued_by, reason, at) VALUES ('stp-1', 'agent', 'bot', 'ops', 'old', '2026-01-01T00:00:00.0000000Z');");
        }

        var store = await OpenAsync();
        Assert.Equal("stp-1", Assert.Single(await store.ListStopsAsync()).Id);
        var now = DateTimeOffset.UtcNow;
        await store.AddDataLabelAsync(new Warden.Core.DataGuard.DataLabelRecord("lbl-1", "bot", null, ["confidential"], [1UL], now, now.AddHours(1)));
        Assert.Single(await store.ListDataLabelsAsync(now));
        using var check = Raw();
        Assert.Equal(SqliteSchema.CurrentVersion, Convert.ToInt32(Scalar(check, "PRAGMA user_version;")));
    }

    [Fact]
    public async Task A_newer_schema_is_refused()
    {
        await OpenAsync();
        using (var raw = Raw())
        {
            Scalar(raw, $"PRAGMA user_version = {SqliteSchema.CurrentVersion + 1};");
        }

        var store = Track(new SqliteWardenStore(new SqliteStoreOptions { Path = DbPath }));
        var ex = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await store.InitializeAsync());
        Assert.Contains("newer", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_path_under_a_file_is_reported_as_unavailable()
    {
        var notAFolder = Path.Combine(_folder, "plain-file");
        await File.WriteAllTextAsync(notAFolder, "x");
        var store = Track(new SqliteWardenStore(new SqliteStoreOptions { Path = Path.Combine(notAFolder, "warden.db") }));
        var ex = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await store.InitializeAsync());
        Assert.IsType<SqliteException>(ex.InnerException);
        Assert.Contains(notAFolder, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_file_that_is_not_a_database_is_reported_as_unavailable()
    {
        await File.WriteAllTextAsync(DbPath, new string('x', 4096));
        var store = Track(new SqliteWardenStore(new SqliteStoreOptions { Path = DbPath }));
        var ex = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await store.InitializeAsync());
        Assert.IsType<SqliteException>(ex.InnerException);
    }

    [Fact]
    public async Task A_write_waits_for_another_writer_then_succeeds()
    {
        var store = await OpenAsync();
        using var raw = Raw();
        using (var transaction = raw.BeginTransaction(deferred: false))
        {
            Scalar(raw, "INSERT INTO state (key, value, updated_at) VALUES ('held', 'x', '2025-01-01T00:00:00Z');");
            var write = store.SetStateAsync("k", "v").AsTask();
            await Task.Delay(300);
            Assert.False(write.IsCompleted);
            transaction.Commit();
            await write.WaitAsync(Patience);
        }

        Assert.Equal("v", await store.GetStateAsync("k"));
        Assert.Equal("x", await store.GetStateAsync("held"));
    }

    [Fact]
    public async Task An_uncontended_write_completes_on_the_callers_thread()
    {
        // No hop to the thread pool when nobody else writes: on a busy gateway that hop is where a decision or a
        // stop waits longest. (A contended write leaves the caller's thread: see the test above.)
        var store = await OpenAsync();
        await store.SetStateAsync("warm", "up");
        var write = store.SetStateAsync("k", "v");
        Assert.True(write.IsCompleted);
        await write;
        Assert.Equal("v", await store.GetStateAsync("k"));
    }

    [Fact]
    public async Task TryAddStopNow_writes_the_stop_and_its_change_but_never_waits_for_another_writer()
    {
        var store = await OpenAsync();
        var first = new StopRecord("stp_first", StopScope.Agent, "a", "ops", "now", DateTimeOffset.UtcNow);
        var second = new StopRecord("stp_second", StopScope.All, "", "ops", "later", DateTimeOffset.UtcNow);
        Assert.True(store.TryAddStopNow(first));

        using var raw = Raw();
        using (var transaction = raw.BeginTransaction(deferred: false))
        {
            // Another writer holds the lock: refused at once (the busy timeout is 5 s), nothing written.
            Assert.False(store.TryAddStopNow(second));
            transaction.Commit();
        }

        Assert.Equal(["stp_first"], (await store.ListStopsAsync()).Select(s => s.Id));
        Assert.Equal(1L, Scalar(raw, "SELECT count(*) FROM changes WHERE topic = 'stop' AND key = 'stp_first';"));
        Assert.Equal(0L, Scalar(raw, "SELECT count(*) FROM changes WHERE key = 'stp_second';"));

        // Idempotent by id, like AddStopAsync: no second change for the same stop.
        Assert.True(store.TryAddStopNow(first));
        Assert.Equal(1L, Scalar(raw, "SELECT count(*) FROM changes WHERE key = 'stp_first';"));

        var fsync = await OpenAsync(new SqliteStoreOptions { Path = DbPath, FullSync = true });
        Assert.False(fsync.TryAddStopNow(second));
    }

    [Fact]
    public async Task Reads_are_not_blocked_by_another_writer()
    {
        var store = await OpenAsync();
        var hash = Tokens.Hash("t");
        await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "a", [], DateTimeOffset.UtcNow), hash);
        using var raw = Raw();
        using var transaction = raw.BeginTransaction(deferred: false);
        Scalar(raw, "UPDATE principals SET revoked_at = '2025-01-01T00:00:00Z';");

        var started = Stopwatch.GetTimestamp();
        Assert.NotNull(await store.FindPrincipalByTokenHashAsync(hash)); // sees the last commit
        Assert.True(Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task A_write_lock_held_past_the_busy_timeout_is_reported_as_unavailable()
    {
        var store = await OpenAsync(new SqliteStoreOptions { Path = DbPath, BusyTimeout = TimeSpan.FromMilliseconds(200) });
        using var raw = Raw();
        using var transaction = raw.BeginTransaction(deferred: false);
        var ex = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await store.PublishChangeAsync("t", "k", null));
        var inner = Assert.IsType<SqliteException>(ex.InnerException);
        Assert.Equal(5, inner.SqliteErrorCode); // SQLITE_BUSY
    }

    [Fact]
    public async Task Change_times_come_from_the_configured_clock()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero));
        var store = await OpenAsync(new SqliteStoreOptions { Path = DbPath, Time = time });
        await store.PublishChangeAsync(ChangeTopics.Stop, "a", null);
        await using var watch = ChangeCollector.Start(store, 0);
        Assert.Equal(time.GetUtcNow(), (await watch.NextAsync(Patience)).Change.At);
    }

    [Fact]
    public async Task The_poll_loop_runs_only_while_someone_watches()
    {
        var store = await OpenAsync();
        Assert.Equal(0, store.Notifier.ActivePollers);
        var w1 = ChangeCollector.Start(store, 0);
        var w2 = ChangeCollector.Start(store, 0);
        await store.PublishChangeAsync(ChangeTopics.Stop, "a", null);
        await w1.NextAsync(Patience);
        await w2.NextAsync(Patience);
        Assert.Equal(1, store.Notifier.ActivePollers);

        await w1.StopAsync();
        Assert.Equal(1, store.Notifier.ActivePollers);
        await w2.StopAsync();
        Assert.Equal(0, store.Notifier.ActivePollers);
        await w1.DisposeAsync();
        await w2.DisposeAsync();
    }

    [Fact]
    public async Task Disposing_the_store_ends_its_watchers_with_ObjectDisposedException()
    {
        var store = new SqliteWardenStore(new SqliteStoreOptions { Path = DbPath });
        await store.InitializeAsync();
        await store.PublishChangeAsync(ChangeTopics.Stop, "a", null);
        await using var watch = ChangeCollector.Start(store, 0);
        await watch.NextAsync(Patience);

        await store.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => watch.Completion.WaitAsync(Patience));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await store.GetStateAsync("k"));
        await store.DisposeAsync(); // twice is fine
    }

    [Fact]
    public async Task Token_lookups_are_fast()
    {
        var store = await OpenAsync();
        var hashes = new List<byte[]>();
        for (var i = 0; i < 500; i++)
        {
            var hash = Tokens.Hash($"token-{i}");
            hashes.Add(hash);
            await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, $"agent-{i}", ["g"], DateTimeOffset.UtcNow), hash);
        }

        for (var i = 0; i < 200; i++)
        {
            await store.FindPrincipalByTokenHashAsync(hashes[i]); // warm up
        }

        const int Lookups = 5000;
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < Lookups; i++)
        {
            Assert.NotNull(await store.FindPrincipalByTokenHashAsync(hashes[i % hashes.Count]));
        }

        var perLookup = Stopwatch.GetElapsedTime(started) / Lookups;
        Console.WriteLine($"FindPrincipalByTokenHashAsync: {perLookup.TotalMicroseconds:F1} µs per lookup (500 principals)");
        Assert.True(perLookup < TimeSpan.FromMilliseconds(5), $"{perLookup.TotalMicroseconds} µs per lookup");
    }

    [Fact]
    public async Task Adding_a_revoked_principal_is_refused()
    {
        var store = await OpenAsync();
        var now = DateTimeOffset.UtcNow;
        await Assert.ThrowsAsync<ArgumentException>(async () =>
            await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "a", [], now, now), Tokens.Hash("t")));
    }

    private async Task<SqliteWardenStore> OpenAsync(SqliteStoreOptions? options = null)
    {
        var store = Track(new SqliteWardenStore(options ?? new SqliteStoreOptions { Path = DbPath }));
        await store.InitializeAsync();
        return store;
    }

    private SqliteWardenStore Track(SqliteWardenStore store)
    {
        _stores.Add(store);
        return store;
    }

    /// <summary>A connection of our own, as another program would open one.</summary>
    private SqliteConnection Raw()
    {
        var connection = new SqliteConnection($"Data Source={DbPath};Pooling=False");
        connection.Open();
        return connection;
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
