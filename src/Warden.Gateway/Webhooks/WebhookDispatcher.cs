using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Warden.Gateway.Configuration;

namespace Warden.Gateway.Webhooks;

/// <summary>One event for webhook receivers.</summary>
/// <param name="Event">approval.requested, approval.decided, breaker.tripped.</param>
/// <param name="Json">The JSON payload (an object with <c>event</c>, <c>id</c>, <c>at</c> and the event's fields).</param>
/// <param name="Text">One line for chat receivers (format <c>slack</c>).</param>
public sealed record WebhookMessage(string Event, string Json, string Text);

/// <summary>
/// Delivers events to the configured receivers: signed with HMAC-SHA256, retried with backoff, each receiver on its
/// own bounded queue so a dead one delays nobody. Publishing never waits: a decision must not depend on a receiver.
/// </summary>
/// <remarks>
/// Signature: <c>X-Warden-Signature: sha256=HEX</c>, the HMAC of <c>TIMESTAMP.BODY</c> under the receiver's secret,
/// with the same <c>X-Warden-Timestamp</c> (Unix seconds) sent along, so a receiver can refuse replays.
/// </remarks>
public sealed partial class WebhookDispatcher : IAsyncDisposable
{
    private readonly List<Receiver> _receivers = [];
    private readonly HttpClient _http;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>Creates the dispatcher for the configured webhooks.</summary>
    public WebhookDispatcher(WardenConfig config, TimeProvider time, ILoggerFactory loggerFactory, WebhookOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        Options = options ?? new WebhookOptions();
        _time = time;
        _logger = loggerFactory.CreateLogger("Warden.Webhooks");
        _http = new HttpClient { Timeout = Options.RequestTimeout };
        foreach (var hook in config.Webhooks)
        {
            var secret = hook.SecretEnv is { } env ? Environment.GetEnvironmentVariable(env) : null;
            if (hook.SecretEnv is not null && string.IsNullOrEmpty(secret))
            {
                LogNoSecret(_logger, hook.Url, hook.SecretEnv);
            }

            var receiver = new Receiver(hook, string.IsNullOrEmpty(secret) ? null : Encoding.UTF8.GetBytes(secret),
                Channel.CreateBounded<WebhookMessage>(new BoundedChannelOptions(Options.QueueLength) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true }));
            receiver.Loop = Task.Run(() => DeliverLoopAsync(receiver, _stopping.Token));
            _receivers.Add(receiver);
        }
    }

    /// <summary>Retry and queue settings.</summary>
    public WebhookOptions Options { get; }

    /// <summary>Deliveries that succeeded, failed for good, and events dropped on a full queue (for status and tests).</summary>
    public (long Delivered, long Failed, long Dropped) Counts => (Interlocked.Read(ref _delivered), Interlocked.Read(ref _failed), Interlocked.Read(ref _dropped));

    private long _delivered, _failed, _dropped;

    /// <summary>Queues an event for every receiver that wants it. Never blocks.</summary>
    public void Publish(WebhookMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        foreach (var r in _receivers)
        {
            if (r.Config.Events.Count > 0 && !r.Config.Events.Contains(message.Event))
            {
                continue;
            }

            if (!r.Queue.Writer.TryWrite(message))
            {
                Interlocked.Increment(ref _dropped);
                LogDropped(_logger, message.Event, r.Config.Url);
            }
        }
    }

    /// <summary>Computes the signature header value for a body sent at a time (receivers do the same to check).</summary>
    public static string Sign(ReadOnlySpan<byte> secret, long timestamp, ReadOnlySpan<byte> body)
    {
        var prefix = Encoding.ASCII.GetBytes(timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".");
        var data = new byte[prefix.Length + body.Length];
        prefix.CopyTo(data, 0);
        body.CopyTo(data.AsSpan(prefix.Length));
        return "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(secret, data));
    }

    private async Task DeliverLoopAsync(Receiver receiver, CancellationToken stopping)
    {
        try
        {
            await foreach (var message in receiver.Queue.Reader.ReadAllAsync(stopping).ConfigureAwait(false))
            {
                await DeliverAsync(receiver, message, stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    private async Task DeliverAsync(Receiver receiver, WebhookMessage message, CancellationToken stopping)
    {
        var body = receiver.Config.Format == "slack"
            ? System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["text"] = message.Text })
            : Encoding.UTF8.GetBytes(message.Json);
        var delivery = "dlv_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var delay = Options.FirstRetryDelay;
        for (var attempt = 1; attempt <= Options.Attempts; attempt++)
        {
            string failure;
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, receiver.Config.Url) { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                var timestamp = _time.GetUtcNow().ToUnixTimeSeconds();
                request.Headers.Add("X-Warden-Event", message.Event);
                request.Headers.Add("X-Warden-Delivery", delivery);
                request.Headers.Add("X-Warden-Attempt", attempt.ToString(System.Globalization.CultureInfo.InvariantCulture));
                request.Headers.Add("X-Warden-Timestamp", timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
                if (receiver.Secret is { } secret)
                {
                    request.Headers.Add("X-Warden-Signature", Sign(secret, timestamp, body));
                }

                using var response = await _http.SendAsync(request, stopping).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref _delivered);
                    return;
                }

                failure = $"HTTP {(int)response.StatusCode}";
                if ((int)response.StatusCode is >= 400 and < 500 and not 408 and not 429)
                {
                    // The receiver refuses this payload; sending it again will not change its mind.
                    break;
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex)
            {
                failure = ex.GetBaseException().Message;
            }

            LogAttemptFailed(_logger, message.Event, receiver.Config.Url, attempt, failure);
            if (attempt < Options.Attempts)
            {
                await Task.Delay(delay, _time, stopping).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, Options.MaxRetryDelay.Ticks));
            }
        }

        Interlocked.Increment(ref _failed);
        LogGaveUp(_logger, message.Event, receiver.Config.Url);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var r in _receivers)
        {
            r.Queue.Writer.TryComplete();
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var r in _receivers)
        {
            if (r.Loop is { } loop)
            {
                await loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        _http.Dispose();
        _stopping.Dispose();
    }

    private sealed class Receiver(WebhookConfig config, byte[]? secret, Channel<WebhookMessage> queue)
    {
        public WebhookConfig Config { get; } = config;

        public byte[]? Secret { get; } = secret;

        public Channel<WebhookMessage> Queue { get; } = queue;

        public Task? Loop { get; set; }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook {Url}: environment variable {Env} is empty; deliveries are not signed")]
    private static partial void LogNoSecret(ILogger logger, string url, string env);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook queue for {Url} is full; {Event} dropped")]
    private static partial void LogDropped(ILogger logger, string @event, string url);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook {Event} to {Url}, attempt {Attempt} failed: {Failure}")]
    private static partial void LogAttemptFailed(ILogger logger, string @event, string url, int attempt, string failure);

    [LoggerMessage(Level = LogLevel.Error, Message = "Webhook {Event} to {Url} not delivered; gave up")]
    private static partial void LogGaveUp(ILogger logger, string @event, string url);
}

/// <summary>Webhook delivery settings.</summary>
public sealed class WebhookOptions
{
    /// <summary>Tries per event, the first included.</summary>
    public int Attempts { get; init; } = 6;

    /// <summary>Wait before the second try; doubled each time.</summary>
    public TimeSpan FirstRetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between tries.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long one POST may take.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Events queued per receiver before new ones are dropped.</summary>
    public int QueueLength { get; init; } = 10_000;
}
