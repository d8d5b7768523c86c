using Microsoft.Data.Sqlite;
using Warden.Core.Stops;
using Warden.Storage.Sqlite.Tests.Audit;

namespace Warden.Storage.Sqlite.Tests;

/// <summary>
/// The write-ahead log is checkpointed by the store's own thread, not inside a writer's commit: commits never pay
/// for a checkpoint's fsyncs, and the log still does not grow without bound.
/// </summary>
public sealed class WalCheckpointerTests : IDisposable
{
    private readonly string _folder = TempFolder.Create();

    public void Dispose() => TempFolder.Delete(_folder);

    [Fact]
    public async Task Writers_leave_checkpoints_to_the_store_thread_which_copies_the_whole_log()
    {
        var path = Path.Combine(_folder, "warden.db");
        await using var store = new SqliteWardenStore(new SqliteStoreOptions { Path = path, CheckpointInterval = TimeSpan.FromMilliseconds(50) });
        await store.InitializeAsync();

        // Writers' connections only checkpoint as a far backstop (SQLite's default would be 1,000 pages).
        await using (var connection = await store.OpenAsync(CancellationToken.None))
        {
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA wal_autocheckpoint;";
            Assert.Equal((long)WalCheckpointer.BackstopPages, (long)command.ExecuteScalar()!);
        }

        // Well past 1,000 pages of log: with the default, some commit here would have checkpointed inline.
        for (var i = 0; i < 1500; i++)
        {
            await store.AddStopAsync(new StopRecord($"stp-{i:0000}", StopScope.Agent, "agent-" + i, "alice", new string('x', 200), DateTimeOffset.UtcNow));
        }

        var checkpointer = store.Checkpointer!;
        await WaitUntilAsync(() => checkpointer.Last is { Log: > 0 } last && last.Copied == last.Log);

        // Nothing was lost on the way: every stop reads back from the database.
        Assert.Equal(1500, (await store.ListStopsAsync()).Count);
    }

    [Fact]
    public async Task The_audit_store_log_is_checkpointed_by_its_own_thread()
    {
        var path = Path.Combine(_folder, "audit.db");
        await using var store = new SqliteAuditStore(new SqliteAuditStoreOptions { Path = path, CheckpointInterval = TimeSpan.FromMilliseconds(50) });
        await store.InitializeAsync();
        for (var i = 0; i < 3000; i += 10)
        {
            Assert.NotNull(store.TryAppendNow([.. Enumerable.Range(i + 1, 10).Select(SqliteAuditStoreTests.Event)]));
        }

        await WaitUntilAsync(() => store.Checkpointer!.Last is { Log: > 0 } last && last.Copied == last.Log);
        Assert.True(store.Verify().Ok);
        Assert.Equal(3000, (await store.GetHeadAsync()).Seq);
    }

    [Fact]
    public async Task A_database_deleted_under_the_store_is_not_recreated_by_the_checkpointer()
    {
        var path = Path.Combine(_folder, "warden.db");
        var store = new SqliteWardenStore(new SqliteStoreOptions { Path = path, CheckpointInterval = TimeSpan.FromMilliseconds(20) });
        await store.InitializeAsync();
        await store.AddStopAsync(new StopRecord("stp-1", StopScope.All, "", "alice", "test", DateTimeOffset.UtcNow));
        await store.DisposeAsync(); // closes pooled connections so the files can go
        SqliteConnection.ClearAllPools();

        using var checkpointer = new WalCheckpointer(path, TimeSpan.FromMilliseconds(20));
        foreach (var f in new[] { path, path + "-wal", path + "-shm" })
        {
            File.Delete(f);
        }

        var rounds = checkpointer.Rounds;
        await Task.Delay(200);
        Assert.False(File.Exists(path), "the checkpointer created a new, empty database");
        Assert.Equal(rounds, checkpointer.Rounds); // every round since failed to open, and was not counted
    }

    [Fact]
    public async Task Zero_interval_keeps_sqlites_own_checkpoints()
    {
        var path = Path.Combine(_folder, "warden.db");
        await using var store = new SqliteWardenStore(new SqliteStoreOptions { Path = path, CheckpointInterval = TimeSpan.Zero });
        await store.InitializeAsync();
        Assert.Null(store.Checkpointer);
        await using var connection = await store.OpenAsync(CancellationToken.None);
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_autocheckpoint;";
        Assert.Equal(1000L, (long)command.ExecuteScalar()!);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        // Bounded: the checkpointer runs every 50 ms here; ten seconds is far beyond any healthy round.
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(condition());
    }
}
