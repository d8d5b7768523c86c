using System.Text.Json;
using System.Text.Json.Nodes;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Warden.Samples.Tests;

/// <summary>A workplace-server child process on a fresh data directory, reached through the SDK's stdio client.</summary>
internal sealed class WorkplaceServer : IAsyncDisposable
{
    private WorkplaceServer(string dataDirectory, McpClient client)
    {
        DataDirectory = dataDirectory;
        Client = client;
    }

    public string DataDirectory { get; }
    public McpClient Client { get; }
    public string LogPath => Path.Combine(DataDirectory, "operations.log");

    public static string ServerDll
    {
        get
        {
            string dll = Path.Combine(AppContext.BaseDirectory, "workplace-server.dll");
            return File.Exists(dll) && File.Exists(Path.ChangeExtension(dll, ".runtimeconfig.json"))
                ? dll
                : throw new FileNotFoundException("workplace-server.dll (with its runtimeconfig) is not in the test output.", dll);
        }
    }

    public static async Task<WorkplaceServer> StartAsync(string? dataDirectory = null, int slowMs = 0)
    {
        dataDirectory ??= Directory.CreateTempSubdirectory("workplace-test-").FullName;
        var transport = new StdioClientTransport(new StdioClientTransportOptions
        {
            Name = "workplace",
            Command = "dotnet",
            Arguments = [ServerDll, "--data", dataDirectory, "--slow-ms", slowMs.ToString(System.Globalization.CultureInfo.InvariantCulture)],
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var client = await McpClient.CreateAsync(transport, cancellationToken: timeout.Token);
        return new WorkplaceServer(dataDirectory, client);
    }

    public Task<CallToolResult> CallAsync(string tool, object? arguments = null, JsonObject? meta = null, CancellationToken ct = default)
    {
        var args = arguments is null
            ? new Dictionary<string, JsonElement>()
            : JsonSerializer.SerializeToElement(arguments).EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
        return Client.CallToolAsync(new CallToolRequestParams { Name = tool, Arguments = args, Meta = meta }, ct).AsTask();
    }

    public static JsonNode Json(CallToolResult result) =>
        JsonNode.Parse(Assert.IsType<TextContentBlock>(Assert.Single(result.Content)).Text)!;

    public List<JsonObject> ReadLog() =>
        !File.Exists(LogPath)
            ? []
            : ReadShared(LogPath).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => JsonNode.Parse(line)!.AsObject()).ToList();

    public JsonNode ReadDataFile(string name) => JsonNode.Parse(ReadShared(Path.Combine(DataDirectory, name)))!;

    /// <summary>Polls the log: lines written after a cancelled call may land after the client gave up.</summary>
    public async Task<List<JsonObject>> WaitForLogAsync(Func<List<JsonObject>, bool> done, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            var lines = ReadLog();
            if (done(lines) || DateTime.UtcNow > deadline)
            {
                return lines;
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A slow child exit can hold the directory briefly; leftovers in /tmp are harmless.
        }
    }

    private static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
