using System.Diagnostics;
using System.Globalization;
using Warden.Storage.Contract;
using Xunit.Abstractions;

namespace Warden.Storage.Sqlite.Tests;

/// <summary>
/// A real second process on the same file: the <c>sqlite3</c> shell appends to the change feed while a
/// store in this process watches. Returns early (with a note in the output) when <c>sqlite3</c> is not installed.
/// </summary>
public sealed class SqliteCrossProcessTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _folder = TempFolder.Create();
    private SqliteWardenStore? _store;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }

        TempFolder.Delete(_folder);
    }

    [Fact]
    public async Task Changes_written_by_another_process_reach_a_watcher_quickly()
    {
        var shell = FindOnPath("sqlite3");
        if (shell is null)
        {
            output.WriteLine("sqlite3 is not installed; cross-process test skipped.");
            return;
        }

        var path = Path.Combine(_folder, SqliteStoreOptions.DefaultFileName);
        _store = new SqliteWardenStore(new SqliteStoreOptions { Path = path });
        await _store.InitializeAsync();
        await using var watch = ChangeCollector.Start(_store, 0);

        var latencies = new List<double>();
        for (var i = 0; i < 8; i++)
        {
            // The shell stamps `at` with its own clock at commit time (millisecond precision).
            await RunAsync(shell, path, $"INSERT INTO changes (topic, key, payload, at) VALUES ('stop', 'proc-{i}', NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));");
            var received = await watch.NextAsync(TimeSpan.FromSeconds(2));
            var arrived = DateTimeOffset.UtcNow - Stopwatch.GetElapsedTime(received.ReceivedAt);
            Assert.Equal($"proc-{i}", received.Change.Key);
            latencies.Add((arrived - received.Change.At).TotalMilliseconds);
        }

        var sorted = latencies.Order().ToList();
        var line = string.Create(
            CultureInfo.InvariantCulture,
            $"sqlite3 process → watcher: n={sorted.Count} min={sorted[0]:F1} ms median={sorted[sorted.Count / 2]:F1} ms max={sorted[^1]:F1} ms");
        output.WriteLine(line);
        Console.WriteLine(line);
        Assert.All(latencies, l => Assert.True(l < 2000, $"latency {l} ms"));

        // And the other way: what this process publishes, the other process reads.
        var id = await _store.PublishChangeAsync("policy", "from-dotnet", null);
        var seen = await RunAsync(shell, path, $"SELECT key FROM changes WHERE id = {id};");
        Assert.Equal("from-dotnet", seen.Trim());
    }

    private static async Task<string> RunAsync(string shell, string database, string sql)
    {
        var start = new ProcessStartInfo(shell)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-cmd");
        start.ArgumentList.Add(".timeout 5000");
        start.ArgumentList.Add(database);
        start.ArgumentList.Add(sql);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"sqlite3 failed: {await stderr}");
        return await stdout;
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(folder => Path.Combine(folder, name))
            .FirstOrDefault(File.Exists);
}
