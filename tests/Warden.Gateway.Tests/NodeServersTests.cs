using System.Text.Json;
using ModelContextProtocol.Protocol;
using Warden.Gateway.Tests.Infrastructure;

namespace Warden.Gateway.Tests;

/// <summary>The npm server-filesystem behind Warden, and the TypeScript SDK client in front of it.</summary>
[Trait("Category", "E2E")]
public sealed class NodeServersTests(NodeServersTests.Fixture fx) : IClassFixture<NodeServersTests.Fixture>
{
    public sealed class Fixture : GatewayFixture
    {
        public string Shared { get; private set; } = "";

        public string Token { get; private set; } = "";

        internal override async Task<WardenGateway> StartAsync(TempDir temp)
        {
            // Resolved: server-filesystem compares real paths (/tmp may be a link).
            Shared = new DirectoryInfo(temp.Sub("shared")).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? temp.Sub("shared");
            Directory.CreateDirectory(Path.Combine(Shared, "notes"));
            await File.WriteAllTextAsync(Path.Combine(Shared, "hello.txt"), "hello from the filesystem upstream\n");
            await File.WriteAllTextAsync(Path.Combine(Shared, "notes", "todo.md"), "- test warden\n");
            var gateway = await WardenGateway.StartAsync(TestUpstreams.Filesystem("files", Shared) + TestUpstreams.Workplace("workplace", temp.Sub("workplace")), temp: temp);
            Token = await gateway.AddAgentAsync("node-agent");
            return gateway;
        }
    }

    [Fact]
    public async Task Filesystem_ListDirectoryAndReadFile_ThroughWarden()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Token);
        var names = (await client.ToolsAsync()).Select(t => t.Name).ToList();
        Assert.Contains("files__list_directory", names);
        Assert.Contains("files__read_text_file", names);

        var listing = await client.CallAsync("files__list_directory", new { path = fx.Shared });
        Assert.NotEqual(true, listing.IsError);
        Assert.Contains("[FILE] hello.txt", listing.Text());
        Assert.Contains("[DIR] notes", listing.Text());

        var file = await client.CallAsync("files__read_text_file", new { path = Path.Combine(fx.Shared, "hello.txt") });
        Assert.NotEqual(true, file.IsError);
        Assert.Contains("hello from the filesystem upstream", file.Text());

        // The upstream's own access control still applies behind Warden.
        var outside = await client.CallAsync("files__read_text_file", new { path = "/etc/hostname" });
        Assert.True(outside.IsError);
    }

    [Fact]
    public async Task TypeScriptClient_DefaultSettings_ListsAndCallsThroughWarden()
    {
        var script = Path.Combine(Repo.NodeClientDir, "client.mjs");
        Repo.NodeModule("@modelcontextprotocol/sdk/package.json");
        var run = await Processes.RunAsync(
            "node",
            [script, fx.Gateway.McpUri.ToString(), fx.Token, "files__read_text_file", JsonSerializer.Serialize(new { path = Path.Combine(fx.Shared, "notes", "todo.md") })],
            workingDirectory: Repo.NodeClientDir);
        Assert.True(run.ExitCode == 0, $"exit {run.ExitCode}: {run.StdErr}");

        using var output = JsonDocument.Parse(run.StdOut);
        var root = output.RootElement;
        Assert.Equal("warden", root.GetProperty("server").GetProperty("name").GetString());
        var tools = root.GetProperty("tools").EnumerateArray().Select(t => t.GetString()).ToList();
        Assert.Contains("files__list_directory", tools);
        Assert.Contains("workplace__list_mail", tools);
        var result = root.GetProperty("result");
        Assert.False(result.TryGetProperty("isError", out var isError) && isError.GetBoolean());
        Assert.Contains("- test warden", result.GetProperty("content")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task TypeScriptClient_WrongToken_FailsToConnect()
    {
        var run = await Processes.RunAsync("node", [Path.Combine(Repo.NodeClientDir, "client.mjs"), fx.Gateway.McpUri.ToString(), "wdn_agent_wrong", "workplace__list_mail"], workingDirectory: Repo.NodeClientDir);
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("client failed", run.StdErr);
        Assert.Contains("unauthorized", run.StdErr, StringComparison.OrdinalIgnoreCase);
    }
}
