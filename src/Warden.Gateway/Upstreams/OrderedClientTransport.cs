using System.Threading.Channels;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Warden.Gateway.Upstreams;

/// <summary>
/// Wraps an upstream transport so progress notifications are seen in wire order, before the response
/// that follows them. The SDK dispatches inbound messages concurrently, so a progress update relayed from
/// an ordinary notification handler races the tool's response (half of the final updates were lost in a
/// spike). Here the read loop hands each progress notification to <see cref="ProgressRelay"/>, which queues
/// it without waiting for the agent, and only then passes the next message on: a slow agent never blocks
/// the upstream's read loop, and the call's handler drains the queue before it answers.
/// </summary>
internal sealed class OrderedClientTransport(IClientTransport inner, ProgressRelay relay) : IClientTransport
{
    public string Name => inner.Name;

    public async Task<ITransport> ConnectAsync(CancellationToken cancellationToken = default)
    {
        var transport = await inner.ConnectAsync(cancellationToken).ConfigureAwait(false);
        return new OrderedTransport(transport, relay);
    }

    private sealed class OrderedTransport : ITransport
    {
        private readonly ITransport _inner;
        private readonly ProgressRelay _relay;
        private readonly Channel<JsonRpcMessage> _messages = Channel.CreateUnbounded<JsonRpcMessage>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        private readonly Task _pump;

        public OrderedTransport(ITransport inner, ProgressRelay relay)
        {
            _inner = inner;
            _relay = relay;
            _pump = Task.Run(PumpAsync);
        }

        public string? SessionId => _inner.SessionId;

        public ChannelReader<JsonRpcMessage> MessageReader => _messages.Reader;

        public Task SendMessageAsync(JsonRpcMessage message, CancellationToken cancellationToken = default) =>
            _inner.SendMessageAsync(message, cancellationToken);

        private async Task PumpAsync()
        {
            try
            {
                await foreach (var message in _inner.MessageReader.ReadAllAsync().ConfigureAwait(false))
                {
                    if (message is JsonRpcNotification { Method: NotificationMethods.ProgressNotification } progress && _relay.TryEnqueue(progress))
                    {
                        continue;
                    }

                    await _messages.Writer.WriteAsync(message).ConfigureAwait(false);
                }

                _messages.Writer.TryComplete();
            }
            catch (Exception ex)
            {
                _messages.Writer.TryComplete(ex);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _inner.DisposeAsync().ConfigureAwait(false);
            try
            {
                await _pump.ConfigureAwait(false);
            }
            catch
            {
                // The pump reports its failure through the channel; disposal must not throw.
            }
        }
    }
}
