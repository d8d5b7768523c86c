using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Warden.Gateway;

// Compiled into each end-to-end test project (see their .csproj): what they all need to drive a real gateway.
namespace Warden.Tests.Shared;

/// <summary>The operator API with a bearer token.</summary>
internal sealed class Api(string baseUrl, string token) : IDisposable
{
    private readonly HttpClient _http = new() { BaseAddress = new Uri(baseUrl + "/api/v1/"), Timeout = TimeSpan.FromSeconds(60) };

    public async Task<(HttpStatusCode Status, JsonNode? Body)> SendAsync(HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    public async Task<JsonNode> StopAgentAsync(string agent, string reason)
    {
        var (status, body) = await SendAsync(HttpMethod.Post, "stops", new { scope = "agent", target = agent, reason });
        Assert.True(status == HttpStatusCode.OK, $"stop: {status} {body}");
        return body!;
    }

    public async Task<JsonArray> ListAsync()
    {
        var (status, body) = await SendAsync(HttpMethod.Get, "stops");
        Assert.Equal(HttpStatusCode.OK, status);
        return body!.AsArray();
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>An agent speaking MCP to the gateway through the SDK client.</summary>
internal static class Agents
{
    public static async Task<McpClient> ConnectAsync(string baseUrl, string token)
    {
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(baseUrl + GatewayHost.McpPath),
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + token },
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        return await McpClient.CreateAsync(transport, cancellationToken: timeout.Token);
    }

    public static async Task<CallToolResult> CallAsync(this McpClient client, string tool, object? args = null, CancellationToken ct = default)
    {
        var dict = args is null
            ? new Dictionary<string, object?>()
            : JsonSerializer.SerializeToElement(args).EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
        return await client.CallToolAsync(tool, dict, cancellationToken: ct);
    }

    public static string Text(this CallToolResult result) =>
        string.Join("\n", result.Content.OfType<TextContentBlock>().Select(t => t.Text));

    /// <summary>Waits for the upstream to have started (the first call can take the child's start-up).</summary>
    public static async Task WarmAsync(McpClient client)
    {
        var last = "";
        var ready = await Wait.UntilAsync(async () =>
        {
            try
            {
                var r = await client.CallAsync("workplace__slow_operation", new { seconds = 0, steps = 1 });
                last = r.Text();
                return r.IsError != true;
            }
            catch (ModelContextProtocol.McpException ex)
            {
                last = ex.Message;
                return false;
            }
        }, TimeSpan.FromSeconds(60));
        Assert.True(ready, "the workplace upstream did not start: " + last);
    }
}

internal static class Wait
{
    /// <summary>Polls a condition (generous bounds: the machine is shared and loaded).</summary>
    public static async Task<bool> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            try
            {
                if (await condition())
                {
                    return true;
                }
            }
            catch (Exception) when (sw.Elapsed < timeout)
            {
                // Not up yet.
            }

            await Task.Delay(50);
        }

        return await condition();
    }
}
