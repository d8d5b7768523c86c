using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Warden.Core.Audit;
using Xunit.Abstractions;

namespace Warden.Audit.E2E.Tests;

public sealed class AuditEndToEndTests(ITestOutputHelper output)
{
    private static Dictionary<string, object?> ReadMail(int i) => new() { ["id"] = $"mail-{1 + (i % 200):000}" };

    /// <summary>Every operation the upstream performed must carry the seq of a call.forwarded record (intent before action).</summary>
    private static void AssertEveryOperationHasItsIntent(GatewayFolder folder, Dictionary<long, AuditEvent> records, ITestOutputHelper output)
    {
        var operations = folder.Operations();
        foreach (var (tool, seq) in operations)
        {
            Assert.True(seq is not null, $"the upstream logged {tool} without a warden/seq: it was forwarded unrecorded");
            Assert.True(records.TryGetValue(seq!.Value, out var intent), $"operation with seq {seq} has no audit record");
            Assert.Equal(AuditKinds.CallForwarded, intent!.Kind);
            Assert.Equal(tool, intent.Tool);
        }

        output.WriteLine($"{operations.Count} upstream operations, each with its intent record");
    }

    [Fact]
    public async Task Crash_KillNineDuringLoad_VerifyPassesAndEveryOperationHasItsIntent()
    {
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("WARDEN_AUDIT_CRASHES"), out var n) ? n : 20;
        using var folder = new GatewayFolder();
        var rng = new Random(20260527);
        long totalCalls = 0;
        for (var round = 1; round <= rounds; round++)
        {
            var gateway = await GatewayProcess.StartAsync(folder);
            await using (gateway)
            {
                using var stop = new CancellationTokenSource();
                long ok = 0;
                var started = new TaskCompletionSource();
                var drivers = Enumerable.Range(0, 8).Select(d => Task.Run(async () =>
                {
                    try
                    {
                        await using var client = await gateway.ConnectAsync();
                        for (var i = 0; !stop.IsCancellationRequested; i++)
                        {
                            var (success, _) = await client.TryCallAsync("workplace__read_mail", ReadMail(i + (d * 1000)), stop.Token);
                            if (success)
                            {
                                Interlocked.Increment(ref ok);
                                started.TrySetResult();
                            }
                        }
                    }
                    catch (Exception)
                    {
                        // the gateway died under us: that is the point
                    }
                })).ToArray();

                await started.Task.WaitAsync(TimeSpan.FromSeconds(60));
                await Task.Delay(rng.Next(50, 1500));
                await gateway.KillAsync();
                await stop.CancelAsync();
                await Task.WhenAll(drivers).WaitAsync(TimeSpan.FromSeconds(30));
                totalCalls += ok;
            }

            var (result, records) = await folder.ReadAuditAsync();
            Assert.True(result.Ok, $"round {round}: {result.Damage} at {result.BadSeq}: {result.Message}");
            AssertEveryOperationHasItsIntent(folder, records, output);
            output.WriteLine($"round {round}: {records.Count} records, chain intact; {Interlocked.Read(ref totalCalls)} calls answered so far");
        }

        // The CLI verifies the data folder and an export offline; a tampered export is caught.
        var (exit, text) = await Paths.CliAsync("audit", "verify", "--config", folder.ConfigPath);
        Assert.True(exit == 0, text);
        var export = Path.Combine(folder.Root, "export.jsonl");
        (exit, text) = await Paths.CliAsync("audit", "export", "--format", "jsonl", "--config", folder.ConfigPath, "--output", export);
        Assert.True(exit == 0, text);
        (exit, text) = await Paths.CliAsync("audit", "verify", "--file", export);
        Assert.True(exit == 0, text);
        output.WriteLine(text);
        var lines = File.ReadAllLines(export);
        lines[10] = lines[10].Replace("\"actor\":\"agent:loadtest\"", "\"actor\":\"agent:someone-else\"", StringComparison.Ordinal);
        File.WriteAllLines(export, lines[..^3].Append(lines[^1])); // edit record 11, and drop the last two records
        (exit, text) = await Paths.CliAsync("audit", "verify", "--file", export);
        Assert.Equal(1, exit);
        Assert.Contains("record 11: edited", text, StringComparison.Ordinal);
        output.WriteLine(text);
    }

    [Fact]
    public async Task FailClosed_UnwritableStore_CallsRefusedNoneForwarded_ThenResumes()
    {
        using var folder = new GatewayFolder();
        await using var gateway = await GatewayProcess.StartAsync(folder);
        await using var client = await gateway.ConnectAsync();
        await EventuallySucceedsAsync(client);
        var before = folder.Operations().Count;

        // Not the -shm: SQLite maps it into memory, and a write to a mapping of an immutable file is a SIGBUS.
        if (!Chattr.Set(true, folder.AuditDb, folder.AuditDb + "-wal"))
        {
            output.WriteLine("chattr +i unavailable: cannot make the store unwritable for root; skipped");
            return;
        }

        try
        {
            for (var i = 0; i < 5; i++)
            {
                var sw = Stopwatch.StartNew();
                var (ok, text) = await client.TryCallAsync("workplace__read_mail", ReadMail(i));
                Assert.False(ok, "a call went through while the audit store was unwritable");
                Assert.True(text.Contains("audit", StringComparison.Ordinal), text + "\n" + gateway.Output);
                output.WriteLine($"refused in {sw.ElapsedMilliseconds} ms: {text}");
            }

            Assert.Equal(before, folder.Operations().Count); // nothing reached the upstream
        }
        finally
        {
            Chattr.Set(false, folder.AuditDb, folder.AuditDb + "-wal");
        }

        await EventuallySucceedsAsync(client);
        await gateway.KillAsync();
        var (result, records) = await folder.ReadAuditAsync();
        Assert.True(result.Ok, result.Message);
        AssertEveryOperationHasItsIntent(folder, records, output);
    }

    [Fact]
    public async Task FailClosed_HeldLock_CallRefusedWithinBound_ThenResumes()
    {
        using var folder = new GatewayFolder();
        await using var gateway = await GatewayProcess.StartAsync(folder);
        await using var client = await gateway.ConnectAsync();
        await EventuallySucceedsAsync(client);
        var before = folder.Operations().Count;

        using (var holder = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = folder.AuditDb, Pooling = false }.ToString()))
        {
            holder.Open();
            using (var begin = holder.CreateCommand())
            {
                begin.CommandText = "BEGIN EXCLUSIVE;";
                begin.ExecuteNonQuery();
            }

            var calls = Enumerable.Range(0, 4).Select(async i =>
            {
                var sw = Stopwatch.StartNew();
                var (ok, text) = await client.TryCallAsync("workplace__read_mail", ReadMail(i));
                return (ok, text, sw.Elapsed);
            }).ToArray();
            foreach (var (ok, text, elapsed) in await Task.WhenAll(calls))
            {
                output.WriteLine($"{(ok ? "FORWARDED" : "refused")} after {elapsed.TotalMilliseconds:0} ms: {text}");
                Assert.False(ok, "a call went through while the audit store was locked");
                Assert.Contains("did not confirm the record within 2 s", text, StringComparison.Ordinal);
                Assert.InRange(elapsed.TotalSeconds, 1.9, 4.5); // the 2 s bound, plus a loaded machine's slack
            }

            Assert.Equal(before, folder.Operations().Count);
            using var rollback = holder.CreateCommand();
            rollback.CommandText = "ROLLBACK;";
            rollback.ExecuteNonQuery();
        }

        await EventuallySucceedsAsync(client);
        await gateway.KillAsync();
        var (result, records) = await folder.ReadAuditAsync();
        Assert.True(result.Ok, result.Message);
        AssertEveryOperationHasItsIntent(folder, records, output);
        // The refused calls' intents, written once the lock went, are followed by their not_forwarded outcome.
        var notForwarded = records.Values.Count(e => e.Outcome == "not_forwarded");
        output.WriteLine($"{notForwarded} not_forwarded outcomes recorded");
        Assert.True(notForwarded >= 4);
    }

    [Fact]
    public async Task OnFailureAllow_HeldLock_ForwardsAfterBound_AndRecordsTheGapWhenTheStoreReturns()
    {
        using var folder = new GatewayFolder(onFailure: "allow", writeTimeout: "500ms");
        await using var gateway = await GatewayProcess.StartAsync(folder);
        await using var client = await gateway.ConnectAsync();
        await EventuallySucceedsAsync(client);
        using (var holder = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = folder.AuditDb, Pooling = false }.ToString()))
        {
            holder.Open();
            using (var begin = holder.CreateCommand())
            {
                begin.CommandText = "BEGIN EXCLUSIVE;";
                begin.ExecuteNonQuery();
            }

            var sw = Stopwatch.StartNew();
            var (ok, text) = await client.TryCallAsync("workplace__read_mail", ReadMail(5));
            Assert.True(ok, text); // the operator chose availability over the record
            Assert.InRange(sw.Elapsed.TotalSeconds, 0.45, 3);
            using var rollback = holder.CreateCommand();
            rollback.CommandText = "ROLLBACK;";
            rollback.ExecuteNonQuery();
        }

        Assert.Contains(folder.Operations(), o => o.Seq is null); // forwarded without a sequence number
        await EventuallySucceedsAsync(client);
        await Task.Delay(500);
        await gateway.KillAsync();
        var (result, records) = await folder.ReadAuditAsync();
        Assert.True(result.Ok, result.Message);
        var gap = Assert.Single(records.Values, e => e.Kind == AuditKinds.AuditGap);
        output.WriteLine(gap.Detail);
        Assert.Contains("\"allowed_unrecorded\":1", gap.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Api_QueryTailOpenApi_AndAdministrationIsRecorded()
    {
        using var folder = new GatewayFolder();
        var (initExit, init) = await Paths.CliAsync("init", "--config", folder.ConfigPath, "--no-save");
        Assert.True(initExit == 0, init);
        var token = init.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith("wdn_", StringComparison.Ordinal));
        await using var gateway = await GatewayProcess.StartAsync(folder);
        var url = $"http://127.0.0.1:{folder.Port}";
        await using (var client = await gateway.ConnectAsync())
        {
            await EventuallySucceedsAsync(client);
        }

        var (exit, text) = await Paths.CliAsync("agents", "add", "helper", "--url", url, "--token", token);
        Assert.True(exit == 0, text);
        await Task.Delay(1000); // the change feed reaches the audit within ~100 ms

        (exit, text) = await Paths.CliAsync("audit", "query", "--tool", "read_mail", "--kind", "call.forwarded", "--json", "--url", url, "--token", token);
        Assert.True(exit == 0, text);
        Assert.Contains("\"kind\":\"call.forwarded\"", text, StringComparison.Ordinal);
        (exit, text) = await Paths.CliAsync("audit", "query", "--text", "helper", "--json", "--url", url, "--token", token);
        Assert.True(exit == 0, text);
        Assert.Contains("\"kind\":\"principal.added\"", text, StringComparison.Ordinal);
        (exit, text) = await Paths.CliAsync("audit", "query", "--kind", "admin.request", "--json", "--url", url, "--token", token);
        Assert.True(exit == 0, text);
        Assert.Contains("\"actor\":\"operator:admin\"", text, StringComparison.Ordinal);
        Assert.Contains("/api/v1/agents", text, StringComparison.Ordinal);
        (exit, text) = await Paths.CliAsync("audit", "tail", "-n", "5", "--url", url, "--token", token);
        Assert.True(exit == 0, text);
        output.WriteLine(text);

        // A broken policy reload is recorded as rejected, a good one as loaded.
        using var admin = new HttpClient { BaseAddress = new Uri(url) };
        admin.DefaultRequestHeaders.Authorization = new("Bearer", token);
        File.WriteAllText(Path.Combine(folder.Root, "policy.yaml"), "version: 1\ndefault: maybe\n");
        (await admin.PostAsync("/api/v1/policy/reload", null)).EnsureSuccessStatusCode();
        File.WriteAllText(Path.Combine(folder.Root, "policy.yaml"), "version: 1\ndefault: allow\nrules:\n  - id: deny-posts\n    match: { tool: post_message }\n    effect: deny\n");
        (await admin.PostAsync("/api/v1/policy/reload", null)).EnsureSuccessStatusCode();
        await Task.Delay(1000);
        (exit, text) = await Paths.CliAsync("audit", "query", "--kind", "policy.*", "--json", "--url", url, "--token", token);
        Assert.True(exit == 0, text);
        output.WriteLine(text);
        Assert.Contains("\"kind\":\"policy.rejected\"", text, StringComparison.Ordinal);
        Assert.True(text.Split("\"kind\":\"policy.loaded\"").Length - 1 >= 2, "policy.loaded at start and after the good reload");
        Assert.DoesNotContain("\"agent\":null", text, StringComparison.Ordinal); // absent fields are left out

        // A stop and a resume land in the chain as agent.stopped / agent.resumed, attributed to the operator.
        (exit, text) = await Paths.CliAsync("stop", "--agent", "loadtest", "--reason", "audit test", "--url", url, "--token", token);
        Assert.True(exit == 0, text);
        await using (var stopped = await gateway.ConnectAsync())
        {
            var (ok, refusal) = await stopped.TryCallAsync("workplace__read_mail", ReadMail(1));
            Assert.False(ok, refusal);
        }

        (exit, text) = await Paths.CliAsync("resume", "--agent", "loadtest", "--reason", "done", "--url", url, "--token", token);
        Assert.True(exit == 0, text);
        await Task.Delay(1000);
        (exit, text) = await Paths.CliAsync("audit", "query", "--kind", "agent.*", "--json", "--url", url, "--token", token);
        Assert.True(exit == 0, text);
        output.WriteLine(text);
        Assert.Contains("\"kind\":\"agent.stopped\"", text, StringComparison.Ordinal);
        Assert.Contains("\"kind\":\"agent.resumed\"", text, StringComparison.Ordinal);
        Assert.Contains("\"agent\":\"loadtest\"", text, StringComparison.Ordinal);
        (exit, text) = await Paths.CliAsync("audit", "query", "--agent", "loadtest", "--effect", "deny", "--json", "--url", url, "--token", token);
        Assert.True(exit == 0, text);
        Assert.Contains("\"kind\":\"decision\"", text, StringComparison.Ordinal); // the refused call, with the stop's rule

        using var http = new HttpClient();
        var openApi = await http.GetStringAsync(url + "/api/v1/openapi.json");
        Assert.Contains("\"/api/v1/audit\"", openApi, StringComparison.Ordinal);
        var anonymous = await http.GetAsync(url + "/api/v1/audit");
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, anonymous.StatusCode);
        http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        var verify = await http.GetStringAsync(url + "/api/v1/audit/verify");
        Assert.Contains("\"ok\":true", verify, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Canary_SecretArguments_NeverInPlainTextInStoreWalExportOrLogs()
    {
        const string keyed = "CANARY-k3y3d-9f2e7d1c";
        const string patterned = "sk-live-CANARY5b8e0a4d2c6f1e3a";
        using var folder = new GatewayFolder();
        await using (var gateway = await GatewayProcess.StartAsync(folder))
        {
            await using var client = await gateway.ConnectAsync();
            for (var i = 0; i < 3; i++)
            {
                await client.TryCallAsync("workplace__read_mail", new Dictionary<string, object?>
                {
                    ["id"] = "mail-001",
                    ["password"] = keyed,
                    ["options"] = new Dictionary<string, object?> { ["Authorization"] = "Bearer " + keyed, ["note"] = "use " + patterned },
                });
            }

            // Read it back while the gateway runs (WAL not yet checkpointed), then again after a kill.
            var wal = folder.AuditDb + "-wal";
            AssertAbsent(wal, keyed, patterned);
            await gateway.KillAsync();
            AssertAbsent(gateway.Output, "gateway output", keyed, patterned);
        }

        foreach (var file in Directory.EnumerateFiles(folder.DataDir, "*", SearchOption.AllDirectories))
        {
            AssertAbsent(file, keyed, patterned);
        }

        var export = Path.Combine(folder.Root, "canary.jsonl");
        var (exit, text) = await Paths.CliAsync("audit", "export", "--config", folder.ConfigPath, "--output", export);
        Assert.True(exit == 0, text);
        AssertAbsent(export, keyed, patterned);
        var (_, stdoutExport) = await Paths.CliAsync("audit", "export", "--config", folder.ConfigPath);
        AssertAbsent(stdoutExport, "export to stdout", keyed, patterned);

        // ... yet an operator who knows the value can find it.
        var (hashExit, digest) = await Paths.CliAsync("audit", "hash", keyed, "--config", folder.ConfigPath);
        Assert.Equal(0, hashExit);
        digest = digest.Trim();
        Assert.StartsWith("hmac:", digest, StringComparison.Ordinal);
        Assert.Contains(digest, stdoutExport, StringComparison.Ordinal);
        var (_, records) = await folder.ReadAuditAsync();
        var decision = records.Values.First(e => e.Kind == AuditKinds.Decision && e.Tool == "read_mail");
        output.WriteLine("stored arguments: " + decision.Arguments);
        Assert.Contains("\"id\":\"mail-001\"", decision.Arguments, StringComparison.Ordinal);

        var key = Path.Combine(folder.DataDir, "audit.key");
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        }
    }

    private static void AssertAbsent(string file, params string[] secrets) =>
        AssertAbsent(File.Exists(file) ? System.Text.Encoding.Latin1.GetString(File.ReadAllBytes(file)) : "", file, secrets);

    private static void AssertAbsent(string content, string where, params string[] secrets)
    {
        foreach (var s in secrets)
        {
            Assert.False(content.Contains(s, StringComparison.Ordinal), $"{s} in plain text in {where}");
        }
    }

    private static async Task EventuallySucceedsAsync(ModelContextProtocol.Client.McpClient client)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var (ok, text) = await client.TryCallAsync("workplace__read_mail", ReadMail(3));
            if (ok)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, "calls do not succeed: " + text);
            await Task.Delay(200);
        }
    }
}

internal static class Chattr
{
    public static bool Set(bool immutable, params string[] paths)
    {
        var all = true;
        foreach (var p in paths.Where(File.Exists))
        {
            using var process = Process.Start(new ProcessStartInfo("chattr", [immutable ? "+i" : "-i", p]) { RedirectStandardError = true })!;
            process.WaitForExit();
            all &= process.ExitCode == 0;
        }

        return all;
    }
}
