using System.Collections.Concurrent;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Warden.Conformance.Fixture;

/// <summary>Which session watches which resource URI, so an update reaches exactly its subscribers.</summary>
public sealed class ResourceSubscriptions
{
    private readonly ConcurrentDictionary<McpServer, ConcurrentDictionary<string, byte>> _bySession = new();

    public static ValueTask<EmptyResult> SubscribeAsync(RequestContext<SubscribeRequestParams> context, CancellationToken ct)
    {
        string uri = context.Params?.Uri ?? throw new McpProtocolException("uri is required.", McpErrorCode.InvalidParams);
        var subscriptions = context.Services!.GetRequiredService<ResourceSubscriptions>();
        subscriptions._bySession.GetOrAdd(context.Server, _ => new()).TryAdd(uri, 0);
        return ValueTask.FromResult(new EmptyResult());
    }

    public static ValueTask<EmptyResult> UnsubscribeAsync(RequestContext<UnsubscribeRequestParams> context, CancellationToken ct)
    {
        string uri = context.Params?.Uri ?? throw new McpProtocolException("uri is required.", McpErrorCode.InvalidParams);
        var subscriptions = context.Services!.GetRequiredService<ResourceSubscriptions>();
        if (subscriptions._bySession.TryGetValue(context.Server, out var uris))
        {
            uris.TryRemove(uri, out _);
        }

        return ValueTask.FromResult(new EmptyResult());
    }

    /// <summary>Sends notifications/resources/updated to every session subscribed to <paramref name="uri"/>.</summary>
    public async Task<int> NotifyUpdatedAsync(string uri, CancellationToken ct)
    {
        int sent = 0;
        foreach (var (server, uris) in _bySession)
        {
            if (!uris.ContainsKey(uri))
            {
                continue;
            }

            try
            {
                await server.SendNotificationAsync(
                    NotificationMethods.ResourceUpdatedNotification, new ResourceUpdatedNotificationParams { Uri = uri }, cancellationToken: ct);
                sent++;
            }
            catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException)
            {
                // That session has ended; forget it rather than fail the caller.
                _bySession.TryRemove(server, out _);
            }
        }

        return sent;
    }
}
