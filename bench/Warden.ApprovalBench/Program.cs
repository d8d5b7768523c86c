// The approval path's own cost (issue 7). An agent makes a held call through an in-process gateway; a watcher on
// GET /api/v1/approvals/stream (the dashboard's path) approves it over HTTP the moment it is pending. Measured per
// repetition: pending -> decision answered (the API), pending -> agent has its result (the whole release: store
// compare-and-set, waking the held call, stop check, audit intent, the upstream call), the same tool call allowed
// outright (no approval), and the approval path's own cost: from the approver's request until Warden forwards the
// released call (its audit intent's time), which excludes the upstream tool's own work and the agent's transport.
//
//   dotnet run -c Release --project bench/Warden.ApprovalBench -- [--reps 500]
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Client;
using Warden.Core.Identity;
using Warden.Gateway;
using Warden.Gateway.Configuration;

var reps = args.SkipWhile(a => a != "--reps").Skip(1).Select(int.Parse).FirstOrDefault(500);
var root = FindRoot();
var workplace = Path.Combine(root, "artifacts", "workplace-server", "workplace-server.dll");
var site = Directory.CreateTempSubdirectory("warden-approvalbench-").FullName;
File.WriteAllText(Path.Combine(site, "policy.yaml"), """
    version: 1
    default: deny
    rules:
      - id: held
        match: { server: workplace, tool: post_message }
        when: args.topic == 'held'
        effect: ask
        approvers: [leads]
      - id: allowed
        match: { server: workplace, tool: post_message }
        when: args.topic == 'open'
        effect: allow
    """);
var configPath = Path.Combine(site, "warden.yaml");
File.WriteAllText(configPath, $"""
    listen: 127.0.0.1:0
    data_dir: ./data
    policy: ./policy.yaml
    approvals:
      max_pending_per_agent: 100000
    servers:
      workplace:
        command: [dotnet, "{workplace}", --data, "{Path.Combine(site, "workplace")}"]
    """);
var config = ConfigLoader.Parse(File.ReadAllText(configPath), configPath, site);
string agentToken, approverToken;
await using (var store = StoreFactory.Create(config, TimeProvider.System))
{
    await store.InitializeAsync();
    agentToken = Tokens.Create(PrincipalKind.Agent);
    await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "bench-agent", [], DateTimeOffset.UtcNow), Tokens.Hash(agentToken));
    approverToken = Tokens.Create(PrincipalKind.Approver);
    await store.AddPrincipalAsync(new Principal(PrincipalKind.Approver, "bench-lead", ["leads"], DateTimeOffset.UtcNow), Tokens.Hash(approverToken));
}

var app = GatewayHost.Build(config, new GatewayOptions { Listen = "127.0.0.1:0", LogLevel = LogLevel.Error });
await app.StartAsync();
var url = app.Urls.First().TrimEnd('/');
await using var agent = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
{
    Endpoint = new Uri(url + "/mcp"),
    AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + agentToken },
}));
using var http = new HttpClient { BaseAddress = new Uri(url + "/api/v1/") };
http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", approverToken);

// The watcher: every pending approval from the stream, with the moment it arrived.
var pendingSeen = Channel.CreateUnbounded<(JsonNode Approval, long At)>();
using var streamCts = new CancellationTokenSource();
var watcher = Task.Run(async () =>
{
    using var stream = await http.GetStreamAsync("approvals/stream", streamCts.Token);
    using var reader = new StreamReader(stream);
    while (await reader.ReadLineAsync(streamCts.Token) is { } line)
    {
        if (line.StartsWith("data: ", StringComparison.Ordinal) && JsonNode.Parse(line[6..]) is { } a && (string?)a["state"] == "pending")
        {
            pendingSeen.Writer.TryWrite((a, Stopwatch.GetTimestamp()));
        }
    }
});

Console.WriteLine($"gateway {url}; {reps} repetitions; cores {Environment.ProcessorCount}; load {Load()}");
for (var ready = false; !ready;)
{
    try
    {
        ready = (await agent.CallToolAsync("workplace__post_message", new Dictionary<string, object?> { ["topic"] = "open", ["text"] = "ready?" })).IsError != true;
    }
    catch (ModelContextProtocol.McpException)
    {
        await Task.Delay(200); // the upstream is still starting
    }
}

for (var i = 0; i < 30; i++)
{
    await agent.CallToolAsync("workplace__post_message", new Dictionary<string, object?> { ["topic"] = "open", ["text"] = "warm " + i });
}

var decidedIds = new HashSet<string>();
var allowed = new List<double>();
var decided = new List<double>();
var released = new List<double>();
var total = new List<double>();
var issuedUtc = new List<DateTimeOffset>();
var gcPause = new List<double>();
for (var i = 0; i < reps + 20; i++)
{
    var t0 = Stopwatch.GetTimestamp();
    await agent.CallToolAsync("workplace__post_message", new Dictionary<string, object?> { ["topic"] = "open", ["text"] = "allowed " + i });
    var allowedMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;

    var start = Stopwatch.GetTimestamp();
    var call = agent.CallToolAsync("workplace__post_message", new Dictionary<string, object?> { ["topic"] = "held", ["text"] = "held " + i }).AsTask();
    // The stream may announce a change twice (this process's own, and again from the store's change feed).
    var (approval, seenAt) = await pendingSeen.Reader.ReadAsync();
    while (!decidedIds.Add((string)approval["id"]!))
    {
        (approval, seenAt) = await pendingSeen.Reader.ReadAsync();
    }

    var gcBefore = GC.GetTotalPauseDuration();
    var issued = DateTimeOffset.UtcNow;
    using (var response = await http.PostAsJsonAsync($"approvals/{approval["id"]}/decision", new { decision = "approve", digest = (string?)approval["digest"] }))
    {
        response.EnsureSuccessStatusCode();
    }

    var decidedAt = Stopwatch.GetTimestamp();
    var result = await call;
    var done = Stopwatch.GetTimestamp();
    gcPause.Add((GC.GetTotalPauseDuration() - gcBefore).TotalMilliseconds);
    if (result.IsError == true)
    {
        throw new InvalidOperationException("the approved call failed: " + string.Join(" ", result.Content.OfType<ModelContextProtocol.Protocol.TextContentBlock>().Select(c => c.Text)));
    }

    if (i >= 20)
    {
        allowed.Add(allowedMs);
        decided.Add(Stopwatch.GetElapsedTime(seenAt, decidedAt).TotalMilliseconds);
        released.Add(Stopwatch.GetElapsedTime(seenAt, done).TotalMilliseconds);
        total.Add(Stopwatch.GetElapsedTime(start, done).TotalMilliseconds);
    }

    issuedUtc.Add(issued);
}

// The approval path's own cost, measured directly: from the approver's request to the moment Warden hands the
// released call to the upstream, which is when it commits the call's intent to the audit (stamped with the same
// clock). The held calls ran one after another, so the k-th intent under rule "held" is the k-th repetition's.
await Task.Delay(500); // the writer's deferred records
await using var auditFile = new Warden.Storage.Sqlite.SqliteAuditStore(Warden.Storage.Sqlite.SqliteAuditStoreOptions.ForDataFolder(Path.Combine(site, "data"), readOnly: true));
await auditFile.InitializeAsync();
var held = auditFile.Read().Where(e => e.Rule == "held").ToList();
var forwardedAt = held.Where(e => e.Kind == Warden.Core.Audit.AuditKinds.CallForwarded).Select(e => e.Time).ToList();
var grantedAt = held.Where(e => e.Kind == "approval.granted").Select(e => e.Time).ToList();
var executedAt = held.Where(e => e.Kind == "approval.executed").Select(e => e.Time).ToList();
if (forwardedAt.Count != issuedUtc.Count)
{
    throw new InvalidOperationException($"expected {issuedUtc.Count} forwarded held calls in the audit, found {forwardedAt.Count}");
}

var ownCost = forwardedAt.Zip(issuedUtc, (f, a) => (f - a).TotalMilliseconds).Skip(20).ToList();

await streamCts.CancelAsync();
await watcher.ContinueWith(_ => { });
Report("allowed call (no approval), agent round trip", allowed);
Report("pending seen -> decision API answered", decided);
Report("pending seen -> agent has the result (approval path + upstream)", released);
Report("held call, agent round trip incl. the approver's turn", total);
var cost = released.Zip(allowed, (r, a) => r - a).ToList();
Report("(pending -> result) - allowed call (two noisy round trips subtracted; for comparison)", cost);
Report("approval path's own cost: approval issued by the API -> call forwarded to the upstream", ownCost);

// How much of the slowest 1% is the garbage collector pausing the process (the agent's client and the approver's
// HTTP client live in it too).
var slowest = ownCost.Zip(gcPause.Skip(20)).OrderByDescending(p => p.First).Take(Math.Max(1, ownCost.Count / 100)).ToList();

// Where the time goes, from the audit's own timestamps: the decision (API, read, compare-and-set), waking the held
// call and releasing it (a second compare-and-set), and the pipeline up to the committed intent.
if (grantedAt.Count == issuedUtc.Count && executedAt.Count == issuedUtc.Count)
{
    var parts = Enumerable.Range(20, ownCost.Count).Select(k => (
        Total: (forwardedAt[k] - issuedUtc[k]).TotalMilliseconds,
        Decide: (grantedAt[k] - issuedUtc[k]).TotalMilliseconds,
        Release: (executedAt[k] - grantedAt[k]).TotalMilliseconds,
        Forward: (forwardedAt[k] - executedAt[k]).TotalMilliseconds)).ToList();
    void Parts(string what, List<(double Total, double Decide, double Release, double Forward)> ps) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"own cost, {what}: issued -> granted {ps.Average(p => p.Decide):0.000} ms, granted -> executed {ps.Average(p => p.Release):0.000}, executed -> forwarded {ps.Average(p => p.Forward):0.000}"));
    var byTotal = parts.OrderBy(p => p.Total).ToList();
    Parts("middle 10% (mean)", byTotal.Skip(byTotal.Count * 45 / 100).Take(Math.Max(1, byTotal.Count / 10)).ToList());
    Parts("slowest 1% (mean)", byTotal.TakeLast(Math.Max(1, byTotal.Count / 100)).ToList());
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"own cost, slowest 1% ({slowest.Count} reps, {slowest.Average(p => p.First):0.000} ms mean): {slowest.Count(p => p.Second > 0)} overlapped a GC pause ({slowest.Sum(p => p.Second):0.000} ms in all); all reps: {gcPause.Skip(20).Count(p => p > 0)} of {ownCost.Count}"));
Console.WriteLine($"load after: {Load()}");
await app.StopAsync();
return 0;

static void Report(string what, List<double> ms)
{
    var s = ms.Order().ToList();
    double P(double q) => s[Math.Min(s.Count - 1, (int)Math.Ceiling(q * s.Count) - 1)];
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{what}: p50 {P(0.50):0.000} ms, p90 {P(0.90):0.000}, p99 {P(0.99):0.000}, max {s[^1]:0.000} (n={s.Count})"));
}

static string Load() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";

static string FindRoot()
{
    var dir = AppContext.BaseDirectory;
    while (dir is not null && !File.Exists(Path.Combine(dir, "Warden.slnx")))
    {
        dir = Path.GetDirectoryName(dir);
    }

    return dir ?? throw new InvalidOperationException("run from inside the repository");
}
