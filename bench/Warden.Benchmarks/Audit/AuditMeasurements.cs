using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Warden.Core;
using Warden.Core.Audit;
using Warden.Core.Pipeline;
using Warden.Gateway.Audit;
using Warden.Gateway.Configuration;
using Warden.Gateway.Mcp;
using Warden.Storage.Sqlite;

namespace Warden.Benchmarks.Audit;

/// <summary>
/// Console measurements of the audit (docs/audit.md has the figures):
/// <code>
/// dotnet run -c Release --project bench/Warden.Benchmarks -- audit writer [process|fsync] [events]
/// dotnet run -c Release --project bench/Warden.Benchmarks -- audit verify [events]
/// dotnet run -c Release --project bench/Warden.Benchmarks -- audit decide [process|fsync] [calls] [concurrency]
/// </code>
/// </summary>
internal static class AuditMeasurements
{
    public static async Task<int> RunAsync(string[] args)
    {
        var mode = args.ElementAtOrDefault(0) ?? "all";
        switch (mode)
        {
            case "writer":
                await WriterAsync(args.ElementAtOrDefault(1) ?? "process", Int(args, 2, 200_000)).ConfigureAwait(false);
                break;
            case "verify":
                await VerifyAsync(Int(args, 1, 1_000_000)).ConfigureAwait(false);
                break;
            case "decide":
                await DecideAsync(args.ElementAtOrDefault(1) ?? "process", Int(args, 2, 20_000), Int(args, 3, 1)).ConfigureAwait(false);
                break;
            default:
                foreach (var level in new[] { "process", "fsync" })
                {
                    await WriterAsync(level, 200_000).ConfigureAwait(false);
                    await DecideAsync(level, 5_000, 1).ConfigureAwait(false);
                    await DecideAsync(level, 20_000, 32).ConfigureAwait(false);
                }

                await VerifyAsync(1_000_000).ConfigureAwait(false);
                break;
        }

        return 0;
    }

    private static int Int(string[] args, int i, int fallback) => args.Length > i ? int.Parse(args[i], CultureInfo.InvariantCulture) : fallback;

    internal static AuditEvent Event(int i) => new()
    {
        Time = DateTimeOffset.UtcNow,
        Kind = i % 2 == 0 ? AuditKinds.Decision : AuditKinds.CallForwarded,
        Actor = "agent:bench",
        Agent = "bench",
        Session = "bench:s1",
        Call = "0123456789abcdef01234567",
        Server = "workplace",
        Tool = "delete_mail",
        Effect = "allow",
        Rule = "deleting-a-few-is-fine",
        PolicyVersion = "sha256:0123456789abcdef",
        Context = i % 2 == 0 ? "{\"annotated_classes\":[\"mutating\",\"destructive\"],\"classes\":[\"mutating\",\"destructive\"],\"counts\":{},\"groups\":[\"assistants\"],\"labels\":[],\"operation\":\"tools/call\",\"received\":\"2026-01-01T00:00:00+00:00\"}" : null,
        Arguments = i % 2 == 0 ? "{\"ids\":[\"mail-001\",\"mail-002\",\"mail-003\"]}" : null,
        Detail = i % 2 == 0 ? "{\"forward\":true}" : null,
    };

    private static string TempFolder()
    {
        var path = Path.Combine(Path.GetTempPath(), "warden-audit-bench", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    private static async Task WriterAsync(string level, int events)
    {
        var folder = TempFolder();
        await using var store = new SqliteAuditStore(new SqliteAuditStoreOptions { Path = Path.Combine(folder, "audit.db"), FullSync = level == "fsync" });
        await store.InitializeAsync().ConfigureAwait(false);
        await using var writer = new AuditWriter(store);
        await writer.Enqueue(Event(0)).Durable.ConfigureAwait(false);
        var producers = 4;
        var sw = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, producers).Select(p => Task.Run(async () =>
        {
            // Each producer keeps up to 1,000 events in flight, like many concurrent calls would.
            var inflight = new Queue<AuditReceipt>();
            for (var i = 0; i < events / producers; i++)
            {
                inflight.Enqueue(writer.Enqueue(Event(i)));
                if (inflight.Count >= 1000)
                {
                    await inflight.Dequeue().Durable.ConfigureAwait(false);
                }
            }

            while (inflight.Count > 0)
            {
                await inflight.Dequeue().Durable.ConfigureAwait(false);
            }
        })).ToArray();
        await Task.WhenAll(tasks).ConfigureAwait(false);
        sw.Stop();
        Console.WriteLine($"writer[{level}]: {events:N0} events durable in {sw.Elapsed.TotalMilliseconds:0} ms = {events / sw.Elapsed.TotalSeconds:N0} events/s; {writer.Batches - 1:N0} commits (avg {events / (double)Math.Max(1, writer.Batches - 1):0} events/commit)");
        Directory.Delete(folder, true);
    }

    private static async Task VerifyAsync(int events)
    {
        var cache = Path.Combine(Path.GetTempPath(), "warden-audit-bench", $"verify-{events}.db");
        Directory.CreateDirectory(Path.GetDirectoryName(cache)!);
        if (!File.Exists(cache))
        {
            await using var build = new SqliteAuditStore(new SqliteAuditStoreOptions { Path = cache });
            await build.InitializeAsync().ConfigureAwait(false);
            for (var i = 0; i < events; i += 10_000)
            {
                await build.AppendAsync([.. Enumerable.Range(i, Math.Min(10_000, events - i)).Select(Event)]).ConfigureAwait(false);
            }
        }

        await using var store = new SqliteAuditStore(new SqliteAuditStoreOptions { Path = cache, ReadOnly = true });
        await store.InitializeAsync().ConfigureAwait(false);
        var head = await store.GetHeadAsync().ConfigureAwait(false);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        long n = 0;
        foreach (var e in store.Read())
        {
            n += e.Seq > 0 ? 1 : 0;
        }

        Console.WriteLine($"read only: {n:N0} records in {sw.ElapsedMilliseconds} ms, CPU {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds:0} ms");
        cpu = Process.GetCurrentProcess().TotalProcessorTime;
        sw.Restart();
        var viaEvents = AuditVerifier.Verify(store.Read(), head);
        Console.WriteLine($"verify over events (the pure verifier, for comparison): {viaEvents.Verified:N0} in {sw.ElapsedMilliseconds} ms wall, CPU {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds:0} ms");
        for (var run = 0; run < 3; run++)
        {
            cpu = Process.GetCurrentProcess().TotalProcessorTime;
            sw.Restart();
            var result = store.Verify();
            sw.Stop();
            Console.WriteLine($"verify: {result.Verified:N0} records in {sw.ElapsedMilliseconds} ms wall, CPU {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds:0} ms ({result.Message}), {Environment.ProcessorCount} cores, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        }
    }

    /// <summary>Stands in for the pipeline's decider: the audit's own cost is what is measured.</summary>
    private sealed class Fixed(Effect effect) : ICallDecider
    {
        public ValueTask<Permit> DecideAsync(CallContext call, CancellationToken cancellationToken, Warden.Gateway.Approvals.IWaitingCaller? caller = null)
        {
            var d = new Decision(effect, "bench-rule", null, "v1");
            return ValueTask.FromResult(new Permit(d, effect == Effect.Allow, d.AgentMessage));
        }

        public ValueTask<Permit> AdmitAsync(CallContext call, Decision approved, CancellationToken cancellationToken) =>
            ValueTask.FromResult(new Permit(approved, forward: true, "allowed"));
    }

    private static async Task DecideAsync(string level, int calls, int concurrency)
    {
        var folder = TempFolder();
        var config = new WardenConfig { DataDir = folder, BaseDirectory = folder, Audit = new AuditConfig { Durability = level } };
        await using var audit = new AuditLog(config, TimeProvider.System, NullLoggerFactory.Instance);
        var allow = new AuditingCallDecider(new Fixed(Effect.Allow), audit);
        var deny = new AuditingCallDecider(new Fixed(Effect.Deny), audit);
        var args = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>("""{"ids":["mail-001","mail-002"],"note":"please tidy up","password":"hunter2"}""")!;
        CallContext Call() => new()
        {
            Agent = new AgentIdentity("bench", ["assistants"]),
            SessionId = "bench:s1",
            Operation = McpOperation.ToolCall,
            Server = "workplace",
            Target = "delete_mail",
            Arguments = args,
            AnnotatedClasses = ToolClasses.Mutating | ToolClasses.Destructive,
            ReceivedAt = DateTimeOffset.UtcNow,
        };

        // Warm up (JIT, the store's first open).
        for (var i = 0; i < 500; i++)
        {
            await (await allow.DecideAsync(Call(), default).ConfigureAwait(false)).CompleteAsync(null, null).ConfigureAwait(false);
            await deny.DecideAsync(Call(), default).ConfigureAwait(false);
        }

        // The decision path's own cost: build the decision record (context, masked arguments) and enqueue it.
        var enqueue = new double[calls];
        for (var i = 0; i < calls; i++)
        {
            var t = Stopwatch.GetTimestamp();
            await deny.DecideAsync(Call(), default).ConfigureAwait(false);
            enqueue[i] = Stopwatch.GetElapsedTime(t).TotalMicroseconds;
        }

        // An audited call until its intent is durable (what a forwarded call waits for), then its outcome.
        var durable = new double[calls];
        var next = -1;
        var refused = 0;
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < calls)
            {
                var t = Stopwatch.GetTimestamp();
                var permit = await allow.DecideAsync(Call(), default).ConfigureAwait(false);
                durable[i] = Stopwatch.GetElapsedTime(t).TotalMicroseconds;
                if (!permit.Forward)
                {
                    Interlocked.Increment(ref refused); // not durable within audit.write_timeout: refused, as designed
                }

                await permit.CompleteAsync(null, null).ConfigureAwait(false);
            }
        }))).ConfigureAwait(false);
        sw.Stop();
        var cpuPerCall = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMicroseconds / calls;
        Console.WriteLine($"decide[{level}]: enqueue (decision path, deny) p50 {P(enqueue, 50):0.0} us, p99 {P(enqueue, 99):0.0} us, p99.9 {P(enqueue, 99.9):0.0} us");
        Console.WriteLine($"decide[{level}]: audited call until intent durable, {concurrency} concurrent: p50 {P(durable, 50):0} us, p99 {P(durable, 99):0} us; {calls / sw.Elapsed.TotalSeconds:N0} calls/s; {audit.Writer.Batches:N0} commits ({audit.Writer.InlineBatches:N0} on the caller's thread) for {audit.Writer.Written:N0} events; process CPU {cpuPerCall:0} us per call; {refused} refused (over the 2 s bound)");
        Directory.Delete(folder, true);
    }

    private static double P(double[] values, double percentile)
    {
        var sorted = values.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * percentile / 100))];
    }
}
