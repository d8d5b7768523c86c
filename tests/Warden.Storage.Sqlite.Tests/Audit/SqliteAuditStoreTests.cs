using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Warden.Core.Audit;
using Warden.Core.Storage;
using Xunit.Abstractions;

namespace Warden.Storage.Sqlite.Tests.Audit;

public sealed class SqliteAuditStoreTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = TempFolder.Create();

    private string DbPath => Path.Combine(_folder, "audit.db");

    public void Dispose() => TempFolder.Delete(_folder);

    private async Task<SqliteAuditStore> OpenAsync(bool fullSync = false, TimeSpan? busy = null)
    {
        var store = new SqliteAuditStore(new SqliteAuditStoreOptions { Path = DbPath, FullSync = fullSync, BusyTimeout = busy ?? TimeSpan.FromSeconds(5) });
        await store.InitializeAsync();
        return store;
    }

    internal static AuditEvent Event(int i) => new()
    {
        Time = DateTimeOffset.UtcNow,
        Kind = i % 2 == 0 ? AuditKinds.Decision : AuditKinds.CallForwarded,
        Actor = "agent:a" + (i % 3),
        Agent = "a" + (i % 3),
        Session = "s1",
        Call = "c" + (i / 2),
        Server = "workplace",
        Tool = i % 4 == 0 ? "read_mail" : "delete_mail",
        Effect = "allow",
        Rule = "r" + (i % 5),
        PolicyVersion = "v1",
        Arguments = "{\"ids\":[\"mail-" + i + "\"]}",
        Detail = i % 7 == 0 ? "x\ny" : null,
    };

    private async Task<SqliteAuditStore> LogOf(int n)
    {
        var store = await OpenAsync();
        for (var i = 0; i < n; i += 100)
        {
            await store.AppendAsync([.. Enumerable.Range(i + 1, Math.Min(100, n - i)).Select(Event)]);
        }

        return store;
    }

    /// <summary>Verifies through the store's fast path and through events; both must agree.</summary>
    private async Task<AuditVerification> VerifyAsync(SqliteAuditStore store)
    {
        var slow = AuditVerifier.Verify(store.Read(), await store.GetHeadAsync());
        store.VerifyParts = 5; // ranges joined across their boundaries
        var split = store.Verify();
        store.VerifyParts = null;
        var fast = store.Verify();
        Assert.True(split.Damage == fast.Damage && split.BadSeq == fast.BadSeq && split.Verified == fast.Verified && split.BadPosition == fast.BadPosition,
            $"5 ranges: {split.Damage} at {split.BadSeq} ({split.Verified} verified); 1 range: {fast.Damage} at {fast.BadSeq} ({fast.Verified} verified)");
        Assert.True(slow.Damage == fast.Damage && slow.BadSeq == fast.BadSeq && slow.Verified == fast.Verified && slow.BadPosition == fast.BadPosition,
            $"fast path: {fast.Damage} at {fast.BadSeq} (position {fast.BadPosition}, {fast.Verified} verified); events: {slow.Damage} at {slow.BadSeq} (position {slow.BadPosition}, {slow.Verified} verified)");
        return fast;
    }

    private void Sql(string sql)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DbPath, Pooling = false }.ToString());
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private static void AssertBad(AuditVerification r, AuditDamage damage, long seq) =>
        Assert.True(!r.Ok && r.Damage == damage && r.BadSeq == seq, $"expected {damage} at {seq}, got {r.Damage} at {r.BadSeq}: {r.Message}");

    [Fact]
    public async Task AppendAsync_ChainsAcrossBatchesAndInstances()
    {
        await using (var a = await LogOf(250))
        {
            await using var b = await OpenAsync(); // another instance (another process) continues the same chain
            var written = await b.AppendAsync([Event(1), Event(2)]);
            Assert.Equal([251L, 252L], written.Select(e => e.Seq));
            await a.AppendAsync([Event(3)]);
            var r = await VerifyAsync(a);
            Assert.True(r.Ok, r.Message);
            Assert.Equal(253, r.Verified);
            Assert.Equal(253, (await a.GetHeadAsync()).Seq);
        }
    }

    [Fact]
    public async Task Read_RoundTripsEveryField()
    {
        await using var store = await OpenAsync();
        var e = Event(7) with { DurationMicros = 1234, ResultDigest = "hmac:ab", Outcome = "ok", Context = "{\"groups\":[]}", Time = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.FromHours(3)).AddTicks(7) };
        var written = (await store.AppendAsync([e]))[0];
        var read = Assert.Single(store.Read());
        Assert.Equal(written.Time, read.Time);
        Assert.Equal(AuditCanonical.Encode(written), AuditCanonical.Encode(read));
        Assert.True(AuditCanonical.HashMatches(read, 1));
    }

    [Fact]
    public async Task Writer_GroupCommitsConcurrentEventsInSeqOrder()
    {
        await using var store = await OpenAsync();
        var writer = new AuditWriter(store);
        var receipts = new AuditReceipt[20_000];
        var sw = Stopwatch.StartNew();
        Parallel.For(0, receipts.Length, i => receipts[i] = writer.Enqueue(Event(i)));
        var written = await Task.WhenAll(receipts.Select(r => r.Durable));
        sw.Stop();
        output.WriteLine($"{receipts.Length} events in {sw.ElapsedMilliseconds} ms ({receipts.Length / sw.Elapsed.TotalSeconds:0} events/s), {writer.Batches} commits");
        Assert.Equal(Enumerable.Range(1, receipts.Length).Select(i => (long)i), written.Select(e => e.Seq).Order());
        Assert.True(writer.Batches < receipts.Length / 10, $"{writer.Batches} commits for {receipts.Length} events: no group commit");
        await writer.DisposeAsync();
        var r = await VerifyAsync(store);
        Assert.True(r.Ok, r.Message);
    }

    [Fact]
    public async Task Commit_WhenIdle_IsDurableOnReturn_WithTheDeferredEventsBeforeIt()
    {
        await using var store = await OpenAsync();
        await using var writer = new AuditWriter(store);
        await writer.Enqueue(Event(1)).Durable; // the writer thread initializes the store

        // Sequential calls: each one's decision (deferred), intent (committed), then outcome (deferred). An intent
        // committed on the caller's thread is durable on return, in the same commit as what was queued before it.
        // (One may find the writer thread still finishing the previous commit: then that thread writes it.)
        var receipts = new List<AuditReceipt>();
        var inline = 0;
        for (var call = 0; call < 20; call++)
        {
            var decision = writer.Defer(() => Event(2));
            var intent = writer.Commit(Event(3));
            if (intent.Durable.IsCompleted)
            {
                inline++;
                Assert.True(intent.Durable.IsCompletedSuccessfully);
                Assert.True(decision.Durable.IsCompletedSuccessfully, "the decision queued before the intent did not share its commit");
            }

            await intent.Durable.WaitAsync(TimeSpan.FromSeconds(10));
            receipts.AddRange([decision, intent, writer.Defer(Event(4))]);
        }

        output.WriteLine($"{inline} of 20 intents durable on return; {writer.InlineBatches} commits on the caller's thread, {writer.Batches} in all");
        Assert.True(inline > 0 && writer.InlineBatches > 0, "no intent was committed on the caller's thread");
        Assert.True(writer.Batches < 40, $"{writer.Batches} commits for 20 calls: the deferred records did not ride with the intents");

        // Nobody commits after the outcome: the writer thread writes it on its own.
        var written = await Task.WhenAll(receipts.Select(r => r.Durable)).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(Enumerable.Range(2, 60).Select(i => (long)i), written.Select(e => e.Seq));
        Assert.True((await VerifyAsync(store)).Ok);
    }

    [Fact]
    public async Task Commit_WithTheWriteLockHeld_ReturnsAtOnce_AndTheWriterWritesItInOrderLater()
    {
        await using var store = await OpenAsync(busy: TimeSpan.FromSeconds(30));
        await using var writer = new AuditWriter(store);
        await writer.Enqueue(Event(1)).Durable;
        using var holder = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DbPath, Pooling = false }.ToString());
        holder.Open();
        using (var begin = holder.CreateCommand())
        {
            begin.CommandText = "BEGIN EXCLUSIVE;";
            begin.ExecuteNonQuery();
        }

        // Neither call may wait for the lock on the caller's thread (that would hold it for the busy timeout, 30 s).
        var first = writer.Commit(Event(2));
        var second = writer.Commit(Event(3));
        Assert.False(first.Durable.IsCompleted);
        Assert.False(second.Durable.IsCompleted);
        await Assert.ThrowsAsync<TimeoutException>(() => first.Durable.WaitAsync(TimeSpan.FromMilliseconds(300)));

        using (var rollback = holder.CreateCommand())
        {
            rollback.CommandText = "ROLLBACK;";
            rollback.ExecuteNonQuery();
        }

        Assert.Equal(2, (await first.Durable.WaitAsync(TimeSpan.FromSeconds(40))).Seq);
        Assert.Equal(3, (await second.Durable.WaitAsync(TimeSpan.FromSeconds(10))).Seq);
        Assert.True((await VerifyAsync(store)).Ok);
    }

    [Fact]
    public async Task TryAppendNow_RefusesWithFsyncDurability_AndWhenTheLockIsHeld()
    {
        await using (var fsync = await OpenAsync(fullSync: true))
        {
            Assert.Null(fsync.TryAppendNow([Event(1)]));
        }

        await using var store = await OpenAsync();
        Assert.Equal(1, Assert.Single(store.TryAppendNow([Event(1)])!).Seq);
        using var holder = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DbPath, Pooling = false }.ToString());
        holder.Open();
        using (var begin = holder.CreateCommand())
        {
            begin.CommandText = "BEGIN IMMEDIATE;";
            begin.ExecuteNonQuery();
        }

        Assert.Null(store.TryAppendNow([Event(2)]));
        using (var rollback = holder.CreateCommand())
        {
            rollback.CommandText = "ROLLBACK;";
            rollback.ExecuteNonQuery();
        }

        Assert.Equal(2, Assert.Single(store.TryAppendNow([Event(3)])!).Seq);
        var r = await VerifyAsync(store);
        Assert.True(r.Ok, r.Message);
        Assert.Equal(2, r.Verified);
    }

    [Fact]
    public async Task Tamper_Edit_Caught()
    {
        await using var store = await LogOf(1000);
        Sql("UPDATE audit SET args = '{\"ids\":[\"mail-999\"]}' WHERE seq = 500;");
        AssertBad(await VerifyAsync(store), AuditDamage.Edited, 500);
    }

    [Fact]
    public async Task Tamper_EditWithRecomputedHash_Caught()
    {
        await using var store = await LogOf(1000);
        var e = store.Read(500, 500).Single() with { Effect = "deny" };
        var hash = AuditCanonical.ComputeHash(e, 500, e.PrevHash.Span);
        Sql($"UPDATE audit SET effect = 'deny', hash = x'{Convert.ToHexString(hash)}' WHERE seq = 500;");
        AssertBad(await VerifyAsync(store), AuditDamage.Edited, 500);
    }

    [Fact]
    public async Task Tamper_TimeRewrittenInAnotherLayout_Caught()
    {
        await using var store = await LogOf(1000);
        Sql("UPDATE audit SET time = substr(time, 1, 19) || 'Z' WHERE seq = 321;");
        AssertBad(await VerifyAsync(store), AuditDamage.Edited, 321);
    }

    [Fact]
    public async Task Tamper_ColumnTypeChanged_Caught()
    {
        await using var store = await LogOf(100);
        Sql("UPDATE audit SET dur_us = '12' WHERE seq = 42;");
        AssertBad(await VerifyAsync(store), AuditDamage.Edited, 42);
    }

    [Theory]
    [InlineData(200)]
    [InlineData(201)]
    [InlineData(601)]
    public async Task Tamper_AtRangeBoundaries_Caught(int seq)
    {
        await using var store = await LogOf(1000);
        Sql($"DELETE FROM audit WHERE seq = {seq};");
        AssertBad(await VerifyAsync(store), AuditDamage.Deleted, seq);
        Sql($"UPDATE audit SET detail = 'x' WHERE seq = {seq + 1};");
        AssertBad(await VerifyAsync(store), AuditDamage.Deleted, seq);
    }

    [Fact]
    public async Task Tamper_Delete_Caught()
    {
        await using var store = await LogOf(1000);
        Sql("DELETE FROM audit WHERE seq = 500;");
        AssertBad(await VerifyAsync(store), AuditDamage.Deleted, 500);
    }

    [Fact]
    public async Task Tamper_DeleteAndRenumber_Caught()
    {
        await using var store = await LogOf(1000);
        Sql("DELETE FROM audit WHERE seq = 500; UPDATE audit SET seq = -seq WHERE seq > 500; UPDATE audit SET seq = -seq - 1 WHERE seq < 0; UPDATE audit_head SET seq = 999;");
        AssertBad(await VerifyAsync(store), AuditDamage.Deleted, 500);
    }

    [Fact]
    public async Task Tamper_InsertAndRenumber_Caught()
    {
        await using var store = await LogOf(1000);
        Sql("UPDATE audit SET seq = -seq WHERE seq >= 500; UPDATE audit SET seq = -seq + 1 WHERE seq < 0; " +
            "INSERT INTO audit SELECT 500, time, kind, actor, agent, session, call, server, tool, 'deny', rule, policy, context, args, result, outcome, dur_us, 'forged', prev, hash FROM audit WHERE seq = 499; " +
            "UPDATE audit_head SET seq = 1001;");
        AssertBad(await VerifyAsync(store), AuditDamage.Inserted, 500);
    }

    [Fact]
    public async Task Tamper_InsertPastHead_Caught()
    {
        await using var store = await LogOf(1000);
        Sql("INSERT INTO audit SELECT 1001, time, kind, actor, agent, session, call, server, tool, effect, rule, policy, context, args, result, outcome, dur_us, detail, hash, hash FROM audit WHERE seq = 1000;");
        AssertBad(await VerifyAsync(store), AuditDamage.Inserted, 1001);
    }

    [Fact]
    public async Task Tamper_Reorder_Caught()
    {
        await using var store = await LogOf(1000);
        Sql("UPDATE audit SET seq = -1 WHERE seq = 500; UPDATE audit SET seq = 500 WHERE seq = 501; UPDATE audit SET seq = 501 WHERE seq = -1;");
        AssertBad(await VerifyAsync(store), AuditDamage.Reordered, 500);
    }

    [Fact]
    public async Task Tamper_Truncate_CaughtByHead()
    {
        await using var store = await LogOf(1000);
        Sql("DELETE FROM audit WHERE seq > 990;");
        AssertBad(await VerifyAsync(store), AuditDamage.Truncated, 991);
    }

    [Fact]
    public async Task Tamper_None_NoFalsePositive()
    {
        await using var store = await LogOf(1000);
        var r = await VerifyAsync(store);
        Assert.True(r.Ok, r.Message);
        Assert.Equal(1000, r.Verified);
    }

    [Fact]
    public async Task ReadOnly_VerifiesWithoutWriting()
    {
        await (await LogOf(10)).DisposeAsync();
        var before = File.GetLastWriteTimeUtc(DbPath);
        await using var ro = new SqliteAuditStore(new SqliteAuditStoreOptions { Path = DbPath, ReadOnly = true });
        await ro.InitializeAsync();
        Assert.True(AuditVerifier.Verify(ro.Read(), await ro.GetHeadAsync()).Ok);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await ro.AppendAsync([Event(1)]));
        Assert.Equal(before, File.GetLastWriteTimeUtc(DbPath));
    }

    [Fact]
    public async Task Query_FiltersAndNewest()
    {
        await using var store = await LogOf(200);
        var byAgent = await store.QueryAsync(new AuditQuery { Agent = "a1", Limit = 1000 });
        Assert.All(byAgent, e => Assert.Equal("a1", e.Agent));
        Assert.True(byAgent.Count > 50);
        var newest = await store.QueryAsync(new AuditQuery { Limit = 5, Newest = true });
        Assert.Equal([196L, 197, 198, 199, 200], newest.Select(e => e.Seq));
        var text = await store.QueryAsync(new AuditQuery { Text = "MAIL-17\"", Limit = 1000 });
        Assert.Equal(17, Assert.Single(text).Seq);
        var kinds = await store.QueryAsync(new AuditQuery { Kind = "call.*", Limit = 1000 });
        Assert.All(kinds, e => Assert.Equal(AuditKinds.CallForwarded, e.Kind));
        var after = await store.QueryAsync(new AuditQuery { AfterSeq = 198 });
        Assert.Equal([199L, 200], after.Select(e => e.Seq));
    }

    [Fact]
    public async Task FailClosed_UnwritableFile_FailsThenResumes()
    {
        if (!Chattr.Available(_folder))
        {
            output.WriteLine("chattr +i not available here; skipped");
            return;
        }

        await using var store = await OpenAsync();
        await using var writer = new AuditWriter(store);
        await writer.Enqueue(Event(1)).Durable;
        Chattr.Immutable(true, DbPath, DbPath + "-wal");
        try
        {
            var failed = writer.Enqueue(Event(2));
            var ex = await Assert.ThrowsAsync<StoreUnavailableException>(() => failed.Durable.WaitAsync(TimeSpan.FromSeconds(10)));
            output.WriteLine(ex.Message);
            Assert.True(writer.Failing);
        }
        finally
        {
            Chattr.Immutable(false, DbPath, DbPath + "-wal");
        }

        var resumed = await writer.Enqueue(Event(3)).Durable.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(2, resumed.Seq);
        Assert.True((await VerifyAsync(store)).Ok);
    }

    [Fact]
    public async Task FailClosed_DeletedFile_Refuses()
    {
        await using var store = await OpenAsync();
        await store.AppendAsync([Event(1)]);
        File.Move(DbPath, DbPath + ".moved");
        try
        {
            var ex = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await store.AppendAsync([Event(2)]));
            Assert.Contains("gone", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Move(DbPath + ".moved", DbPath);
        }

        Assert.Equal(2, (await store.AppendAsync([Event(3)]))[0].Seq);
    }

    [Fact]
    public async Task Hang_HeldLock_ReceiptNotDurableWithinBound_ThenResumes()
    {
        await using var store = await OpenAsync(busy: TimeSpan.FromSeconds(30));
        await using var writer = new AuditWriter(store);
        await writer.Enqueue(Event(1)).Durable;
        using var holder = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DbPath, Pooling = false }.ToString());
        holder.Open();
        using (var begin = holder.CreateCommand())
        {
            begin.CommandText = "BEGIN EXCLUSIVE;";
            begin.ExecuteNonQuery();
        }

        var pending = writer.Enqueue(Event(2));
        var sw = Stopwatch.StartNew();
        await Assert.ThrowsAsync<TimeoutException>(() => pending.Durable.WaitAsync(TimeSpan.FromSeconds(2)));
        Assert.InRange(sw.Elapsed.TotalSeconds, 1.9, 3);
        var queued = writer.Enqueue(Event(3));
        Assert.False(queued.Durable.IsCompleted); // queued, never blocking the caller

        using (var rollback = holder.CreateCommand())
        {
            rollback.CommandText = "ROLLBACK;";
            rollback.ExecuteNonQuery();
        }

        Assert.Equal(2, (await pending.Durable.WaitAsync(TimeSpan.FromSeconds(10))).Seq);
        // Verified once nothing is being written: a record committed between reading the head and the records
        // would look added behind Warden's back.
        Assert.Equal(3, (await queued.Durable.WaitAsync(TimeSpan.FromSeconds(10))).Seq);
        Assert.True((await VerifyAsync(store)).Ok);
    }

    [Fact]
    public async Task Verify_OneMillionEvents_Timed()
    {
        if (Environment.GetEnvironmentVariable("WARDEN_AUDIT_BIG") is null)
        {
            output.WriteLine("set WARDEN_AUDIT_BIG=1 to run (bench/Warden.Benchmarks audit-verify measures the same)");
            return;
        }

        await using var store = await OpenAsync();
        for (var i = 0; i < 1_000_000; i += 10_000)
        {
            await store.AppendAsync([.. Enumerable.Range(i, 10_000).Select(Event)]);
        }

        var sw = Stopwatch.StartNew();
        var r = store.Verify();
        output.WriteLine($"verify 1,000,000: {sw.ElapsedMilliseconds} ms");
        Assert.True(r.Ok, r.Message);
    }
}

internal static class Chattr
{
    public static bool Available(string folder)
    {
        var probe = Path.Combine(folder, "chattr-probe");
        File.WriteAllText(probe, "x");
        try
        {
            return Run("+i", probe) && Run("-i", probe);
        }
        finally
        {
            File.Delete(probe);
        }
    }

    public static void Immutable(bool on, params string[] paths)
    {
        foreach (var p in paths.Where(File.Exists))
        {
            Run(on ? "+i" : "-i", p);
        }
    }

    private static bool Run(string flag, string path)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("chattr", [flag, path]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
