using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Warden.Core.Audit;
using Warden.Storage.Sqlite;

namespace Warden.Audit.E2E.Tests;

/// <summary>A folder with warden.yaml, an allow-all policy and the workplace upstream; and `warden serve` on it as a child process.</summary>
internal sealed class GatewayFolder : IDisposable
{
    public GatewayFolder(string durability = "process", string onFailure = "deny", string writeTimeout = "2s")
    {
        Root = Path.Combine(Path.GetTempPath(), "warden-audit-e2e", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
        Port = FreePort();
        File.WriteAllText(Path.Combine(Root, "policy.yaml"), "version: 1\ndefault: allow\n");
        File.WriteAllText(ConfigPath, $"""
            listen: 127.0.0.1:{Port}
            data_dir: ./data
            audit:
              durability: {durability}
              on_failure: {onFailure}
              write_timeout: {writeTimeout}
            mcp:
              anonymous_agent: loadtest
            policy: ./policy.yaml
            servers:
              workplace:
                command: [dotnet, {Paths.Workplace}, --data, ./workplace]
            """);
    }

    public string Root { get; }

    public int Port { get; }

    public string ConfigPath => Path.Combine(Root, "warden.yaml");

    public string DataDir => Path.Combine(Root, "data");

    public string AuditDb => Path.Combine(DataDir, "audit.db");

    public string OperationsLog => Path.Combine(Root, "workplace", "operations.log");

    /// <summary>The <c>_meta["warden/seq"]</c> of every operation the upstream logged (null where it had none).</summary>
    public List<(string Tool, long? Seq)> Operations()
    {
        var list = new List<(string, long?)>();
        if (!File.Exists(OperationsLog))
        {
            return list;
        }

        using var stream = new FileStream(OperationsLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || !line.EndsWith('}'))
            {
                continue; // a line torn by a crash of the upstream (it is killed only after Warden)
            }

            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            long? seq = root.TryGetProperty("seq", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt64() : null;
            list.Add((root.GetProperty("tool").GetString()!, seq));
        }

        return list;
    }

    /// <summary>Verifies the audit offline and returns every record.</summary>
    public async Task<(AuditVerification Result, Dictionary<long, AuditEvent> Records)> ReadAuditAsync()
    {
        await using var store = new SqliteAuditStore(new SqliteAuditStoreOptions { Path = AuditDb, ReadOnly = true });
        await store.InitializeAsync();
        var result = store.Verify();
        var records = store.Read().ToDictionary(e => e.Seq);
        return (result, records);
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Root, true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

/// <summary>`warden serve` as a child process.</summary>
internal sealed class GatewayProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private GatewayProcess(Process process, GatewayFolder folder)
    {
        _process = process;
        Folder = folder;
    }

    public GatewayFolder Folder { get; }

    public Uri Mcp => new($"http://127.0.0.1:{Folder.Port}/mcp");

    /// <summary>Everything the gateway printed (stdout and stderr).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static async Task<GatewayProcess> StartAsync(GatewayFolder folder)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, WorkingDirectory = folder.Root };
        foreach (var a in new[] { Paths.Warden, "serve", "--config", folder.ConfigPath })
        {
            info.ArgumentList.Add(a);
        }

        var process = Process.Start(info)!;
        var gateway = new GatewayProcess(process, folder);
        process.OutputDataReceived += (_, e) => gateway.Append(e.Data);
        process.ErrorDataReceived += (_, e) => gateway.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException("warden serve exited: " + gateway.Output);
            }

            try
            {
                var health = await http.GetAsync($"http://127.0.0.1:{folder.Port}/api/v1/health");
                if (health.IsSuccessStatusCode && gateway.Output.Contains("Audit log", StringComparison.Ordinal))
                {
                    return gateway;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("warden serve did not come up: " + gateway.Output);
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }

    public async Task<McpClient> ConnectAsync()
    {
        var transport = new HttpClientTransport(new HttpClientTransportOptions { Endpoint = Mcp, TransportMode = HttpTransportMode.StreamableHttp });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        return await McpClient.CreateAsync(transport, cancellationToken: timeout.Token);
    }

    /// <summary>kill -9 the gateway alone; its stdio upstream then sees end of input and exits (killed after 10 s otherwise).</summary>
    public async Task KillAsync()
    {
        var children = Descendants(_process.Id);
        _process.Kill(entireProcessTree: false);
        await _process.WaitForExitAsync();
        foreach (var pid in children)
        {
            try
            {
                using var child = Process.GetProcessById(pid);
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try
                {
                    await child.WaitForExitAsync(wait.Token);
                }
                catch (OperationCanceledException)
                {
                    child.Kill();
                }
            }
            catch (ArgumentException)
            {
                // already gone
            }
        }
    }

    private static List<int> Descendants(int pid)
    {
        var result = new List<int>();
        var queue = new Queue<int>([pid]);
        while (queue.Count > 0)
        {
            var p = queue.Dequeue();
            var tasks = $"/proc/{p}/task";
            if (!Directory.Exists(tasks))
            {
                continue;
            }

            foreach (var task in Directory.EnumerateDirectories(tasks))
            {
                try
                {
                    foreach (var c in File.ReadAllText(Path.Combine(task, "children")).Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    {
                        var child = int.Parse(c, System.Globalization.CultureInfo.InvariantCulture);
                        result.Add(child);
                        queue.Enqueue(child);
                    }
                }
                catch (IOException)
                {
                }
            }
        }

        return result;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await KillAsync();
        }

        _process.Dispose();
    }
}

internal static class Paths
{
    public static readonly string Repo = FindRepo();

    public static string Configuration => AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";

    public static string Warden => Path.Combine(Repo, "src", "Warden.Cli", "bin", Configuration, "net10.0", "warden.dll");

    public static string Workplace => Path.Combine(Repo, "artifacts", "workplace-server", "workplace-server.dll");

    private static string FindRepo()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Warden.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Warden.slnx not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Runs the CLI: exit code and output.</summary>
    public static async Task<(int Exit, string Output)> CliAsync(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Warden);
        info.ArgumentList.Add("--no-color");
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["NO_COLOR"] = "1";
        info.Environment["COLUMNS"] = "400";
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout + await stderr);
    }
}

internal static class CallExtensions
{
    /// <summary>Calls a tool; the text of an error result or the exception message comes back as the error.</summary>
    public static async Task<(bool Ok, string Text)> TryCallAsync(this McpClient client, string tool, Dictionary<string, object?> args, CancellationToken ct = default)
    {
        try
        {
            var result = await client.CallToolAsync(tool, args, cancellationToken: ct);
            var text = string.Join("\n", result.Content.OfType<TextContentBlock>().Select(t => t.Text));
            return (result.IsError != true, text);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return (false, ex.Message);
        }
    }
}
