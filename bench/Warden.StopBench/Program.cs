// Stop latency under load (issue 6). 16 agents call a fast upstream tool through an in-process gateway at full
// speed; the bench stops everything, measures the time to the acknowledgement, checks that no call was forwarded
// after it, resumes, lets traffic pick up again, and repeats. Two ways of stopping: StopService.StopAsync in
// process, and POST /api/v1/stops over HTTP (the operator's path). By default the agents' MCP clients run in the
// bench process, sharing the gateway's thread pool (the worst case); --agents-process runs them in a child process
// (as agents run elsewhere in a deployment), --agents-nice N at a lower scheduling priority.
//
//   dotnet run -c Release --project bench/Warden.StopBench -- [--reps 1000] [--agents 16] [--agents-process [--agents-nice 10]] [--out FILE]
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

if (args.FirstOrDefault() == "agents")
{
    // Child mode (--agents-process): tokens on stdin, one per line, then an empty line; calls until stdin closes.
    var tokens = new List<string>();
    while (Console.ReadLine() is { Length: > 0 } line)
    {
        tokens.Add(line);
    }

    using var stop = new CancellationTokenSource();
    var counts = RunAgentsAsync(args[1], tokens, new Dictionary<string, object?> { ["seconds"] = 0, ["steps"] = 1 }, () => Console.WriteLine("ready"), stop.Token);
    _ = Task.Run(() =>
    {
        while (Console.ReadLine() is not null)
        {
        }

        stop.Cancel();
    });
    var (a, r) = await counts;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{a} {r}"));
    return 0;
}

var reps = Arg("--reps", 1000);
int? agentsProcessNice = args.Contains("--agents-process") ? Arg("--agents-nice", 0) : null;
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

var callArgs = new Dictionary<string, object?> { ["seconds"] = 0, ["steps"] = 1 };
using var end = new CancellationTokenSource();
Task<(long Answered, long Refused)> load;
Process? agentsProcess = null;
if (agentsProcessNice is null)
{
    load = RunAgentsAsync(url, agentTokens, callArgs, () => { }, end.Token);
}
else
{
    // The agents in a process of their own, as in a deployment (agents run elsewhere, not in the gateway's
    // thread pool), at the given nice level: they still call at full speed, but the scheduler favours the gateway.
    var self = Environment.ProcessPath!;
    var start = new ProcessStartInfo("nice") { RedirectStandardInput = true, RedirectStandardOutput = true };
    foreach (var a in new[] { "-n", agentsProcessNice.Value.ToString(CultureInfo.InvariantCulture), self })
    {
        start.ArgumentList.Add(a);
    }

    if (Path.GetFileNameWithoutExtension(self) == "dotnet")
    {
        start.ArgumentList.Add(System.Reflection.Assembly.GetEntryAssembly()!.Location);
    }

    start.ArgumentList.Add("agents");
    start.ArgumentList.Add(url);
    agentsProcess = Process.Start(start)!;
    foreach (var t in agentTokens)
    {
        await agentsProcess.StandardInput.WriteLineAsync(t);
    }

    await agentsProcess.StandardInput.WriteLineAsync();
    await agentsProcess.StandardInput.FlushAsync();
    if (await agentsProcess.StandardOutput.ReadLineAsync() != "ready")
    {
        throw new InvalidOperationException("the agents' process did not start");
    }

    load = Task.Run(async () =>
    {
        await Task.Delay(Timeout.Infinite, end.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        agentsProcess.StandardInput.Close(); // the agents stop and report their counts
        var counts = (await agentsProcess.StandardOutput.ReadLineAsync() ?? "0 0").Split(' ');
        await agentsProcess.WaitForExitAsync();
        return (long.Parse(counts[0], CultureInfo.InvariantCulture), long.Parse(counts[1], CultureInfo.InvariantCulture));
    });
}

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
    var gcPauses = new List<(double Latency, double Pause)>(reps);
    var recordParts = new List<(double Latency, double Record, bool AtOnce)>(reps);
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
        var gcBefore = GC.GetTotalPauseDuration();
        var t0 = Stopwatch.GetTimestamp();
        if (mode == "in-process")
        {
            var ack = await stops.StopAsync(StopScope.All, "", "bench-ops", $"rep {i}");
            latencies.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            id = ack.Stop.Id;
            atBarrier = ack.ForwardedAtBarrier;
            inEffect.Add(ack.InEffectAfter.TotalMilliseconds);
            recordParts.Add((latencies[^1], latencies[^1] - ack.InEffectAfter.TotalMilliseconds, ack.RecordedAtOnce));
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

        gcPauses.Add((latencies[^1], (GC.GetTotalPauseDuration() - gcBefore).TotalMilliseconds));

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
            $"{mode,-10} stop->in effect (gate closed, barrier drained; before the store write and the cancellations) ms: p50 {P(inEffect, 0.50):0.000}  p90 {P(inEffect, 0.90):0.000}  p99 {P(inEffect, 0.99):0.000}  max {inEffect[^1]:0.000}");
        Console.WriteLine(effectLine);
        report.AppendLine(effectLine);
    }

    var line = string.Create(CultureInfo.InvariantCulture,
        $"{mode,-10} stop->ack ms: p50 {P(latencies, 0.50):0.000}  p90 {P(latencies, 0.90):0.000}  p99 {P(latencies, 0.99):0.000}  max {latencies[^1]:0.000}  (n={latencies.Count}); forwarded after ack: {violations} in {violatingReps} reps; cancelled in flight: {cancelled}; unrecorded: {notRecorded}");
    Console.WriteLine(line);
    report.AppendLine(line);

    // How much of the slowest 1% is this process's garbage collector pausing every thread (the agents' clients
    // allocate in it too, when they run in process).
    var slowest = gcPauses.OrderByDescending(g => g.Latency).Take(Math.Max(1, reps / 100)).ToList();
    var gcLine = string.Create(CultureInfo.InvariantCulture,
        $"{mode,-10} slowest 1% ({slowest.Count} reps, {slowest.Average(g => g.Latency):0.000} ms mean): {slowest.Count(g => g.Pause > 0)} overlapped a GC pause, {slowest.Sum(g => g.Pause):0.000} ms of GC pause in all; all reps: {gcPauses.Count(g => g.Pause > 0)} of {gcPauses.Count} overlapped one");
    Console.WriteLine(gcLine);
    report.AppendLine(gcLine);
    if (recordParts.Count > 0)
    {
        // In effect -> recorded: the store write after the barrier, on the stopping thread when the lock is free.
        var slow = recordParts.OrderByDescending(r => r.Latency).Take(Math.Max(1, reps / 100)).ToList();
        var recordLine = string.Create(CultureInfo.InvariantCulture,
            $"{mode,-10} in effect -> recorded: p50 {P([.. recordParts.Select(r => r.Record).Order()], 0.50):0.000} ms; slowest 1%: {slow.Average(r => r.Record):0.000} ms of {slow.Average(r => r.Latency):0.000} mean, {slow.Count(r => !r.AtOnce)} waited for another writer; all reps: {recordParts.Count(r => !r.AtOnce)} of {recordParts.Count} waited");
        Console.WriteLine(recordLine);
        report.AppendLine(recordLine);
    }
}

await end.CancelAsync();
var (answered, refused) = await load;
Console.WriteLine($"agent calls answered {answered}, refused {refused}; load {Load()}");
report.AppendLine(CultureInfo.InvariantCulture, $"agents {agentCount}; answered {answered}; refused {refused}; load {Load()}; cores {Environment.ProcessorCount}");
if (outFile is not null)
{
    File.WriteAllText(outFile, report.ToString());
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

// Every agent calls as fast as it can until cancelled; onReady runs once the upstream answers.
static async Task<(long Answered, long Refused)> RunAgentsAsync(string url, IReadOnlyList<string> tokens, Dictionary<string, object?> callArgs, Action onReady, CancellationToken end)
{
    var clients = new List<McpClient>();
    foreach (var t in tokens)
    {
        clients.Add(await McpClient.CreateAsync(
            new HttpClientTransport(new HttpClientTransportOptions
            {
                Endpoint = new Uri(url + "/mcp"),
                AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + t },
            }),
            cancellationToken: end));
    }

    for (var ready = false; !ready;)
    {
        try
        {
            ready = (await clients[0].CallToolAsync("workplace__slow_operation", callArgs, cancellationToken: end)).IsError != true;
        }
        catch (ModelContextProtocol.McpException)
        {
            await Task.Delay(200, end);
        }
    }

    onReady();
    long answered = 0, refused = 0;
    await Task.WhenAll(clients.Select(c => Task.Run(async () =>
    {
        while (!end.IsCancellationRequested)
        {
            try
            {
                var r = await c.CallToolAsync("workplace__slow_operation", callArgs, cancellationToken: end);
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
    })));
    foreach (var c in clients)
    {
        await c.DisposeAsync();
    }

    return (answered, refused);
}

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
