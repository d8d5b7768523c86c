using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Warden.Gateway.Upstreams;

/// <summary>
/// Maps the progress tokens Warden sends upstream to the agent session and token that asked for progress,
/// and relays updates in order. Upstream tokens are Warden's own, so two agents that both chose token
/// <c>1</c> on a shared upstream never see each other's progress.
/// </summary>
internal sealed class ProgressRelay
{
    // Progress is advisory: if an agent reads so slowly that this many updates pile up, drop the rest
    // rather than hold memory for it. The final response is never dropped.
    private const int MaxPending = 256;

    private readonly ConcurrentDictionary<string, Route> _routes = new(StringComparer.Ordinal);
    private long _next;

    /// <summary>Registers a call that asked for progress; returns the token to send upstream.</summary>
    public Route Register(McpServer agentSession, ProgressToken agentToken)
    {
        var token = "wdn-" + Interlocked.Increment(ref _next).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var route = new Route(this, token, agentSession, agentToken);
        _routes[token] = route;
        return route;
    }

    /// <summary>Queues a progress notification read from an upstream; false when it is not one of ours.</summary>
    public bool TryEnqueue(JsonRpcNotification notification)
    {
        if (notification.Params is not JsonObject p || !p.TryGetPropertyValue("progressToken", out var tokenNode) || tokenNode is null)
        {
            return false;
        }

        var key = tokenNode.GetValueKind() == JsonValueKind.String ? tokenNode.GetValue<string>() : tokenNode.ToJsonString();
        if (!_routes.TryGetValue(key, out var route))
        {
            // An update for a call that already answered, or a token we never issued: drop it, as the SDK would.
            return true;
        }

        route.Enqueue(p);
        return true;
    }

    /// <summary>One relayed call's progress route.</summary>
    public sealed class Route : IAsyncDisposable
    {
        private readonly ProgressRelay _owner;
        private readonly McpServer _session;
        private readonly ProgressToken _agentToken;
        private readonly Lock _gate = new();
        private Task _tail = Task.CompletedTask;
        private int _pending;

        internal Route(ProgressRelay owner, string upstreamToken, McpServer session, ProgressToken agentToken)
        {
            _owner = owner;
            UpstreamToken = upstreamToken;
            _session = session;
            _agentToken = agentToken;
        }

        /// <summary>The token sent upstream.</summary>
        public string UpstreamToken { get; }

        internal void Enqueue(JsonObject upstreamParams)
        {
            if (Interlocked.Increment(ref _pending) > MaxPending)
            {
                Interlocked.Decrement(ref _pending);
                return;
            }

            // Relay the update as the upstream sent it (extra fields included), with only the token rewritten.
            var value = (JsonObject)upstreamParams.DeepClone();
            value["progressToken"] = JsonSerializer.SerializeToNode(_agentToken, McpJsonUtilities.DefaultOptions);
            lock (_gate)
            {
                _tail = SendAfter(_tail, value);
            }
        }

        private async Task SendAfter(Task previous, JsonObject value)
        {
            await previous.ConfigureAwait(false);
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _session.SendNotificationAsync(NotificationMethods.ProgressNotification, value, McpJsonUtilities.DefaultOptions, timeout.Token).ConfigureAwait(false);
            }
            catch
            {
                // The agent went away or is too slow; progress is advisory.
            }
            finally
            {
                Interlocked.Decrement(ref _pending);
            }
        }

        /// <summary>Waits until every update received so far has been sent to the agent, then unregisters.</summary>
        public async ValueTask DisposeAsync()
        {
            _owner._routes.TryRemove(UpstreamToken, out _);
            Task tail;
            lock (_gate)
            {
                tail = _tail;
            }

            await tail.ConfigureAwait(false);
        }
    }
}
