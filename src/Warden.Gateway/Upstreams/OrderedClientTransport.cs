using System.Diagnostics.CodeAnalysis;
using System.Threading.Channels;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Warden.Gateway.Upstreams;

/// <summary>
/// Wraps an upstream transport so progress notifications are seen in wire order, before the response
/// that follows them. The SDK dispatches inbound messages concurrently, so a progress update relayed from
/// an ordinary notification handler races the tool's response (half of the final updates were lost in a
/// spike). Here the session's own read of each message hands a progress notification to
/// <see cref="ProgressRelay"/>, which queues it without waiting for the agent, and only then yields the next
/// message: a slow agent never blocks the upstream's read loop, and the call's handler drains the queue
/// before it answers. The filter runs inside the session's read rather than in a pump of its own, so a
/// response reaches its caller without an extra thread hand-off.
/// </summary>
internal sealed class OrderedClientTransport(IClientTransport inner, ProgressRelay relay) : IClientTransport
{
    public string Name => inner.Name;

    public async Task<ITransport> ConnectAsync(CancellationToken cancellationToken = default)
    {
        var transport = await inner.ConnectAsync(cancellationToken).ConfigureAwait(false);
        return new OrderedTransport(transport, relay);
    }

    private sealed class OrderedTransport(ITransport inner, ProgressRelay relay) : ITransport
    {
        private readonly ProgressFilter _reader = new(inner.MessageReader, relay);

        public string? SessionId => inner.SessionId;

        public ChannelReader<JsonRpcMessage> MessageReader => _reader;

        public Task SendMessageAsync(JsonRpcMessage message, CancellationToken cancellationToken = default) =>
            inner.SendMessageAsync(message, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    /// <summary>The inner reader minus the progress notifications the relay took.</summary>
    private sealed class ProgressFilter(ChannelReader<JsonRpcMessage> inner, ProgressRelay relay) : ChannelReader<JsonRpcMessage>
    {
        public override Task Completion => inner.Completion;

        public override bool TryRead([MaybeNullWhen(false)] out JsonRpcMessage item)
        {
            while (inner.TryRead(out item))
            {
                if (item is JsonRpcNotification { Method: NotificationMethods.ProgressNotification } progress && relay.TryEnqueue(progress))
                {
                    continue;
                }

                return true;
            }

            return false;
        }

        public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) =>
            inner.WaitToReadAsync(cancellationToken);
    }
}
