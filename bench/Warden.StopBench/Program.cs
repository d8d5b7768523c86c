// Stop latency under load (issue 6). 16 agents call a fast upstream tool through an in-process gateway at full
// speed; the bench stops everything, measures the time to the acknowledgement, checks that no call was forwarded
// after it, resumes, lets traffic pick up again, and repeats. Two ways of stopping: StopService.StopAsync in
// process, and POST /api/v1/stops over HTTP (the operator's path).
//
//   dotnet run -c Release --project bench/Warden.StopBench -- [--reps 1000] [--agents 16] [--out FILE]
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Client;
using Warden.Core.Identity;
using Warden.Core.Stops;
using Warden.Gateway;
using Warden.Gateway.Configuration;
using Warden.Gateway.Stops;

var reps = Arg("--reps", 1000);
var agentCount = Arg("--agents", 16);
var outFile = args.SkipWhile(a => a != "--out").Skip(1).FirstOrDefault();

var root = FindRoot();
var workplace = Path.Combine(root, "artifacts", "workplace-server", "workplace-server.dll");
var site = Directory.CreateTempSubdirectory("warden-stopbench-").FullName;
Directory.CreateDirectory(Path.Combine(site, "policy"));
File.WriteAllText(Path.Combine(site, "policy", "policy.yaml"), """
    version: 1
    default: deny
    rules:
      - id: fast
        match: { server: workplace, tool: slow_operation }
        effect: allow
    """);
var configPath = Path.Combine(site, "warden.yaml");
File.WriteAllText(configPath, $"""
    listen: 127.0.0.1:0
    data_dir: ./data
    store: sqlite
    policy: ./policy/
    servers:
      workplace:
        command: [dotnet, "{workplace}", --data, "{Path.Combine(site, "workplace")}"]
        connection: shared
    """);
var config = ConfigLoader.Parse(File.ReadAllText(configPath), configPath, site);

var agentTokens = new List<string>();
string operatorToken;
await using (var store = StoreFactory.Create(config, TimeProvider.System))
{
    await store.InitializeAsync();
    operatorToken = Tokens.Create(PrincipalKind.Operator);
    await store.AddPrincipalAsync(new Principal(PrincipalKind.Operator, "bench-ops", [], DateTimeOffset.UtcNow), Tokens.Hash(operatorToken));
    for (var i = 0; i < agentCount; i++)
    {
        var t = Tokens.Create(PrincipalKind.Agent);
        await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, $"agent-{i:00}", [], DateTimeOffset.UtcNow), Tokens.Hash(t));
        agentTokens.Add(t);
    }
}

var app = GatewayHost.Build(config, new GatewayOptions { Listen = "127.0.0.1:0", LogLevel = LogLevel.Error });
await app.StartAsync();
var url = app.Urls.First().TrimEnd('/');
var stops = app.Services.GetRequiredService<StopService>();
Console.WriteLine($"gateway {url}; {agentCount} agents; {reps} repetitions per mode; cores {Environment.ProcessorCount}; load {Load()}");

var clients = new List<McpClient>();
foreach (var t in agentTokens)
{
    clients.Add(await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
    {
        Endpoint = new Uri(url + "/mcp"),
        AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + t },
    })));
}

var callArgs = new Dictionary<string, object?> { ["seconds"] = 0, ["steps"] = 1 };
for (var ready = false; !ready;)
{
    try
    {
        ready = (await clients[0].CallToolAsync("workplace__slow_operation", callArgs)).IsError != true;
    }
    catch (ModelContextProtocol.McpException)
    {
        await Task.Delay(200);
    }
}

// The load: every agent calls as fast as it can until the end.
using var end = new CancellationTokenSource();
long answered = 0, refused = 0;
var load = clients.Select(c => Task.Run(async () =>
{
    while (!end.IsCancellationRequested)
    {
        try
        {
            var r = await c.CallToolAsync("workplace__slow_operation", callArgs, cancellationToken: end.Token);
            Interlocked.Increment(ref r.IsError == true ? ref refused : ref answered);
        }
        catch (OperationCanceledException) when (end.IsCancellationRequested)
        {
        }
        catch (Exception)
        {
            Interlocked.Increment(ref refused);
        }
    }
})).ToList();

// Warm-up: JIT, pools.
var warmStart = stops.Forwarded;
await Task.Delay(2000);
Console.WriteLine($"throughput before the bench: {(stops.Forwarded - warmStart) / 2.0:0} calls/s forwarded");

using var http = new HttpClient { BaseAddress = new Uri(url + "/api/v1/") };
http.DefaultRequestHeaders.Authorization = new("Bearer", operatorToken);

var report = new StringBuilder();
foreach (var mode in new[] { "in-process", "http" })
{
    var latencies = new List<double>(reps);
    var inEffect = new List<double>(reps);
    long violations = 0, cancelled = 0, notRecorded = 0;
    var violatingReps = 0;
    for (var i = 0; i < reps; i++)
    {
        // Traffic first: at least a few calls forwarded since the last resume, so the stop lands under load.
        var before = stops.Forwarded;
        var spin = Stopwatch.StartNew();
        while (stops.Forwarded - before < agentCount && spin.ElapsedMilliseconds < 500)
        {
            await Task.Delay(1);
        }

        string id;
        long atBarrier;
        var t0 = Stopwatch.GetTimestamp();
        if (mode == "in-process")
        {
            var ack = await stops.StopAsync(StopScope.All, "", "bench-ops", $"rep {i}");
            latencies.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            id = ack.Stop.Id;
            atBarrier = ack.ForwardedAtBarrier;
            inEffect.Add(ack.InEffectAfter.TotalMilliseconds);
            cancelled += ack.Cancelled;
            notRecorded += ack.Recorded ? 0 : 1;
        }
        else
        {
            using var response = await http.PostAsJsonAsync("stops", new { scope = "all", reason = $"rep {i}" });
            var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            latencies.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            response.EnsureSuccessStatusCode();
            id = (string)body["stop"]!["id"]!;
            atBarrier = stops.Forwarded; // read after the HTTP answer: a looser bound than in process
            cancelled += (int)body["cancelled"]!;
            notRecorded += (bool)body["recorded"]! ? 0 : 1;
        }

        // Let the agents hammer the closed gate for a moment; nothing may be forwarded.
        await Task.Delay(2);
        var after = stops.Forwarded;
        if (after != atBarrier)
        {
            violations += after - atBarrier;
            violatingReps++;
        }

        await stops.ResumeAsync(id, null, null, "bench-ops", "next repetition");
    }

    latencies.Sort();
    inEffect.Sort();
    if (inEffect.Count > 0)
    {
        var effectLine = string.Create(CultureInfo.InvariantCulture,
            $"{mode,-10} stop->in effect (gate closed, barrier drained, in flight cancelled; before the store write) ms: p50 {P(inEffect, 0.50):0.000}  p90 {P(inEffect, 0.90):0.000}  p99 {P(inEffect, 0.99):0.000}  max {inEffect[^1]:0.000}");
        Console.WriteLine(effectLine);
        report.AppendLine(effectLine);
    }

    var line = string.Create(CultureInfo.InvariantCulture,
        $"{mode,-10} stop->ack ms: p50 {P(latencies, 0.50):0.000}  p90 {P(latencies, 0.90):0.000}  p99 {P(latencies, 0.99):0.000}  max {latencies[^1]:0.000}  (n={latencies.Count}); forwarded after ack: {violations} in {violatingReps} reps; cancelled in flight: {cancelled}; unrecorded: {notRecorded}");
    Console.WriteLine(line);
    report.AppendLine(line);
}

await end.CancelAsync();
await Task.WhenAll(load);
Console.WriteLine($"agent calls answered {answered}, refused {refused}; load {Load()}");
report.AppendLine(CultureInfo.InvariantCulture, $"agents {agentCount}; answered {answered}; refused {refused}; load {Load()}; cores {Environment.ProcessorCount}");
if (outFile is not null)
{
    File.WriteAllText(outFile, report.ToString());
}

foreach (var c in clients)
{
    await c.DisposeAsync();
}

await app.StopAsync();
await app.DisposeAsync();
try
{
    Directory.Delete(site, recursive: true);
}
catch (IOException)
{
}

return 0;

static double P(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

static string Load() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?";

int Arg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

static string FindRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Warden.slnx")))
    {
        dir = dir.Parent;
    }

    return dir?.FullName ?? throw new InvalidOperationException("run from inside the repository");
}
