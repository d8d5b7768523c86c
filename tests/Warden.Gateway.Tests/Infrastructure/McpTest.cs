using System.Text.Json;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Warden.Gateway.Tests.Infrastructure;

/// <summary>Small helpers over the SDK client.</summary>
internal static class McpTest
{
    public static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(60);

    public static Dictionary<string, JsonElement> Args(object? arguments) =>
        arguments is null
            ? []
            : JsonSerializer.SerializeToElement(arguments).EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());

    /// <summary>Calls a tool with the raw request (arguments as JSON), under a timeout so nothing hangs a test.</summary>
    public static async Task<CallToolResult> CallAsync(this McpClient client, string tool, object? arguments = null, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CallTimeout);
        return await client.CallToolAsync(new CallToolRequestParams { Name = tool, Arguments = Args(arguments) }, timeout.Token);
    }

    public static string Text(this CallToolResult result) =>
        string.Join("\n", result.Content.OfType<TextContentBlock>().Select(t => t.Text));

    public static JsonElement Json(this CallToolResult result) => JsonDocument.Parse(result.Text()).RootElement.Clone();

    public static async Task<List<Tool>> ToolsAsync(this McpClient client)
    {
        using var timeout = new CancellationTokenSource(CallTimeout);
        var tools = await client.ListToolsAsync(cancellationToken: timeout.Token);
        return tools.Select(t => t.ProtocolTool).ToList();
    }
}
