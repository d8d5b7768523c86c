using System.CommandLine;
using Microsoft.Extensions.Logging.Abstractions;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Warden.Cli.Commands;

/// <summary>
/// <c>warden stdio</c>: lets a desktop client that only speaks stdio use a running gateway. Messages are relayed
/// unchanged in both directions, so stops, approvals and limits stay in the one gateway process.
/// </summary>
internal static class StdioCommand
{
    public static Command Create()
    {
        var agent = new Option<string?>("--agent") { Description = "The agent's name (informational; the token decides who the agent is)" };
        var connect = new Option<string>("--connect") { Description = "The gateway's MCP URL", DefaultValueFactory = _ => Environment.GetEnvironmentVariable("WARDEN_MCP_URL") ?? "http://127.0.0.1:8470/mcp" };
        var token = new Option<string?>("--token") { Description = "The agent's token (default: WARDEN_AGENT_TOKEN)" };
        var command = new Command("stdio", "Bridge a stdio MCP client (desktop apps) to a running gateway") { agent, connect, token };
        command.SetAction(async (parse, ct) =>
        {
            var agentToken = parse.GetValue(token) ?? Environment.GetEnvironmentVariable("WARDEN_AGENT_TOKEN")
                ?? throw new CliException("an agent token is required: --token or WARDEN_AGENT_TOKEN", 2);
            var url = parse.GetValue(connect)!;
            var client = new HttpClientTransport(
                new HttpClientTransportOptions
                {
                    Endpoint = new Uri(url),
                    TransportMode = HttpTransportMode.StreamableHttp,
                    AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + agentToken },
                    Name = "warden-gateway",
                },
                NullLoggerFactory.Instance);

            // The HTTP transport connects lazily; probe now so a wrong URL or token fails here, clearly.
            await ProbeAsync(url, agentToken, ct).ConfigureAwait(false);

            ITransport upstream;
            try
            {
                upstream = await client.ConnectAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException)
            {
                throw new CliException($"no Warden gateway answers at {url}: {ex.Message}", 3);
            }

            await using var _ = upstream;
            await using var downstream = new StdioServerTransport("warden", NullLoggerFactory.Instance);
            using var done = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var toGateway = PumpAsync(downstream, upstream, done.Token);
            var toClient = PumpAsync(upstream, downstream, done.Token);
            await Task.WhenAny(toGateway, toClient).ConfigureAwait(false);
            await done.CancelAsync().ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    private static async Task ProbeAsync(string url, string token, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw new CliException($"no Warden gateway answers at {url}: {ex.Message}", 3);
        }

        using (response)
        {
            if (response.StatusCode is System.Net.HttpStatusCode.Unauthorized or System.Net.HttpStatusCode.Forbidden)
            {
                throw new CliException($"the gateway at {url} refused the agent token ({(int)response.StatusCode})", 4);
            }
        }
    }

    private static async Task PumpAsync(ITransport from, ITransport to, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var message in from.MessageReader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    await to.SendMessageAsync(message, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (message is JsonRpcRequest request && ex is not OperationCanceledException)
                {
                    // The gateway refused one request (for example a protocol version probe): answer it with the
                    // error so the client can react, as it would connected directly, and keep relaying.
                    var code = ex is ModelContextProtocol.McpProtocolException p ? p.ErrorCode : ModelContextProtocol.McpErrorCode.InternalError;
                    const string remote = "Request failed (remote): ";
                    var text = ex.Message.StartsWith(remote, StringComparison.Ordinal) ? ex.Message[remote.Length..] : ex.Message;
                    await from.SendMessageAsync(new JsonRpcError { Id = request.Id, Error = new JsonRpcErrorDetail { Code = (int)code, Message = text } }, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex)
        {
            await Console.Error.WriteLineAsync("warden stdio: " + ex.Message).ConfigureAwait(false);
        }
    }
}
