using System.Collections.Concurrent;
using System.Threading.Channels;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Warden.Gateway.Tests.Infrastructure;

/// <summary>
/// Wraps a client transport and records every message it receives, in the order the transport delivered
/// them. The SDK dispatches inbound messages concurrently, so what an <see cref="IProgress{T}"/> sees says
/// nothing about wire order; this does.
/// </summary>
internal sealed class RecordingClientTransport(IClientTransport inner) : IClientTransport
{
    public ConcurrentQueue<JsonRpcMessage> Received { get; } = new();

    public string Name => inner.Name;

    public async Task<ITransport> ConnectAsync(CancellationToken cancellationToken = default) =>
        new Recording(await inner.ConnectAsync(cancellationToken), Received);

    private sealed class Recording : ITransport
    {
        private readonly ITransport _inner;
        private readonly ConcurrentQueue<JsonRpcMessage> _received;
        private readonly Channel<JsonRpcMessage> _messages = Channel.CreateUnbounded<JsonRpcMessage>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        private readonly Task _pump;

        public Recording(ITransport inner, ConcurrentQueue<JsonRpcMessage> received)
        {
            _inner = inner;
            _received = received;
            _pump = Task.Run(PumpAsync);
        }

        public string? SessionId => _inner.SessionId;

        public ChannelReader<JsonRpcMessage> MessageReader => _messages.Reader;

        public Task SendMessageAsync(JsonRpcMessage message, CancellationToken cancellationToken = default) => _inner.SendMessageAsync(message, cancellationToken);

        private async Task PumpAsync()
        {
            try
            {
                await foreach (var message in _inner.MessageReader.ReadAllAsync())
                {
                    _received.Enqueue(message);
                    await _messages.Writer.WriteAsync(message);
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
            await _inner.DisposeAsync();
            try
            {
                await _pump;
            }
            catch
            {
                // Reported through the channel.
            }
        }
    }
}

/// <summary>An <see cref="IProgress{T}"/> that records synchronously, in the order it is called.</summary>
internal sealed class ProgressLog : IProgress<ProgressNotificationValue>
{
    private readonly ConcurrentQueue<ProgressNotificationValue> _values = new();

    public IReadOnlyList<ProgressNotificationValue> Values => [.. _values];

    public void Report(ProgressNotificationValue value) => _values.Enqueue(value);
}
