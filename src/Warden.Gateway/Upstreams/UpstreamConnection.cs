using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Warden.Gateway.Configuration;

namespace Warden.Gateway.Upstreams;

/// <summary>The health of one upstream connection, as <c>warden status</c> shows it.</summary>
public enum UpstreamState
{
    /// <summary>The first connection attempt has not finished.</summary>
    Starting,

    /// <summary>Connected and initialized.</summary>
    Up,

    /// <summary>Not connected; a new attempt is scheduled.</summary>
    Down,

    /// <summary>A reconnection attempt is running.</summary>
    Restarting,

    /// <summary>Shut down by Warden.</summary>
    Closed,
}

/// <summary>Raised when a call needs an upstream that is not connected. Its message goes to the agent.</summary>
public sealed class UpstreamUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public UpstreamUnavailableException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public UpstreamUnavailableException() { }

    /// <summary>Creates the exception.</summary>
    public UpstreamUnavailableException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>What an upstream connection reports to, and asks of, the gateway.</summary>
internal interface IUpstreamHooks
{
    /// <summary>A notification other than progress (logging, resource updates, list changes).</summary>
    ValueTask OnNotificationAsync(UpstreamConnection connection, JsonRpcNotification notification, CancellationToken cancellationToken);

    /// <summary>The upstream asks the agent's client for a model completion.</summary>
    ValueTask<CreateMessageResult> OnSamplingAsync(UpstreamConnection connection, CreateMessageRequestParams? request, CancellationToken cancellationToken);

    /// <summary>The upstream asks the agent's user for input.</summary>
    ValueTask<ElicitResult> OnElicitationAsync(UpstreamConnection connection, ElicitRequestParams? request, CancellationToken cancellationToken);

    /// <summary>The upstream asks the agent's client for its roots.</summary>
    ValueTask<ListRootsResult> OnRootsAsync(UpstreamConnection connection, ListRootsRequestParams? request, CancellationToken cancellationToken);
}

/// <summary>
/// One MCP client connection to an upstream tool server, restarted with backoff when it dies. A call to an
/// upstream that is down fails at once with a clear message; it never waits for the reconnection.
/// </summary>
internal sealed partial class UpstreamConnection : IAsyncDisposable
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    private readonly ServerConfig _config;
    private readonly IUpstreamHooks _hooks;
    private readonly ProgressRelay _progress;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly HttpClient _http;
    private readonly TimeProvider _time;
    private readonly string _baseDirectory;
    private readonly CancellationTokenSource _lifetime = new();
    private readonly SemaphoreSlim _toolsGate = new(1, 1);
    private volatile McpClient? _client;
    private volatile IReadOnlyList<Tool>? _tools;
    private Task? _loop;
    private int _disposed;
    private readonly TaskCompletionSource _firstAttempt = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public UpstreamConnection(
        ServerConfig config,
        string scope,
        ClientCapabilities? clientCapabilities,
        IUpstreamHooks hooks,
        ProgressRelay progress,
        HttpClient http,
        string baseDirectory,
        ILoggerFactory loggerFactory,
        TimeProvider time)
    {
        _config = config;
        Scope = scope;
        ClientCapabilities = clientCapabilities;
        _hooks = hooks;
        _progress = progress;
        _http = http;
        _baseDirectory = baseDirectory;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("Warden.Upstream." + config.Name);
        _time = time;
    }

    /// <summary>The upstream's configured name.</summary>
    public string Server => _config.Name;

    /// <summary>The configuration it was made from.</summary>
    public ServerConfig Config => _config;

    /// <summary>Who the connection serves: empty when shared, else an agent name or a session id.</summary>
    public string Scope { get; }

    /// <summary>Capabilities Warden declares upstream, mirrored from the agent's client for per-session connections.</summary>
    public ClientCapabilities? ClientCapabilities { get; }

    /// <summary>Current health.</summary>
    public UpstreamState State { get; private set; } = UpstreamState.Starting;

    /// <summary>The last connection error, if any.</summary>
    public string? LastError { get; private set; }

    /// <summary>How many times the connection was re-established.</summary>
    public int Restarts { get; private set; }

    /// <summary>When the next reconnection attempt is due, while down.</summary>
    public DateTimeOffset? NextAttemptAt { get; private set; }

    /// <summary>The upstream's capabilities from its last initialization.</summary>
    public ServerCapabilities? Capabilities { get; private set; }

    /// <summary>The upstream's name and version.</summary>
    public Implementation? ServerInfo { get; private set; }

    /// <summary>The upstream's instructions, if any.</summary>
    public string? Instructions { get; private set; }

    /// <summary>Completes after the first connection attempt, successful or not.</summary>
    public Task FirstAttempt => _firstAttempt.Task;

    /// <summary>Starts connecting in the background.</summary>
    public void Start() => _loop ??= Task.Run(() => RunAsync(_lifetime.Token));

    /// <summary>The connected client, or an exception with a message fit for the agent.</summary>
    public McpClient GetClient()
    {
        if (_client is { } client && State == UpstreamState.Up)
        {
            return client;
        }

        var detail = State switch
        {
            UpstreamState.Starting => "it is still starting",
            UpstreamState.Restarting => "it is restarting",
            UpstreamState.Closed => "it was shut down",
            _ => NextAttemptAt is { } at
                ? $"it is down ({LastError ?? "connection lost"}); next attempt in {Math.Max(0, (at - _time.GetUtcNow()).TotalSeconds):0.#} s"
                : $"it is down ({LastError ?? "connection lost"})",
        };
        throw new UpstreamUnavailableException($"upstream server '{Server}' is unavailable: {detail}");
    }

    /// <summary>All of the upstream's tools, paged through and cached until it says they changed.</summary>
    public async ValueTask<IReadOnlyList<Tool>> GetToolsAsync(CancellationToken cancellationToken)
    {
        if (_tools is { } cached)
        {
            return cached;
        }

        await _toolsGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_tools is { } again)
            {
                return again;
            }

            var client = GetClient();
            if (client.ServerCapabilities?.Tools is null)
            {
                return _tools = [];
            }

            var all = new List<Tool>();
            string? cursor = null;
            var pages = 0;
            do
            {
                var page = await client.ListToolsAsync(new ListToolsRequestParams { Cursor = cursor }, cancellationToken).ConfigureAwait(false);
                all.AddRange(page.Tools);
                cursor = page.NextCursor;
            }
            while (cursor is not null && ++pages < 1000);

            _tools = all;
            return all;
        }
        finally
        {
            _toolsGate.Release();
        }
    }

    /// <summary>Forgets the cached tool list (the upstream said it changed, or it reconnected).</summary>
    public void InvalidateTools() => _tools = null;

    private async Task RunAsync(CancellationToken stopping)
    {
        var failures = 0;
        while (!stopping.IsCancellationRequested)
        {
            McpClient? client = null;
            try
            {
                State = failures == 0 && Restarts == 0 && State == UpstreamState.Starting ? UpstreamState.Starting : UpstreamState.Restarting;
                client = await ConnectAsync(stopping).ConfigureAwait(false);
                Capabilities = client.ServerCapabilities;
                ServerInfo = client.ServerInfo;
                Instructions = client.ServerInstructions;
                InvalidateTools();
                _client = client;
                LastError = null;
                NextAttemptAt = null;
                State = UpstreamState.Up;
                if (failures > 0 || Restarts > 0)
                {
                    LogReconnected(_logger, Server);
                }

                failures = 0;
                _firstAttempt.TrySetResult();

                // Wait for the transport to close: the child exited, the HTTP session ended, or we shut down.
                var completion = await client.Completion.WaitAsync(stopping).ConfigureAwait(false);
                LastError = Describe(completion);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                LastError = ex.Message;
                failures++;
            }
            finally
            {
                _client = null;
                _firstAttempt.TrySetResult();
                if (client is not null)
                {
                    try
                    {
                        await client.DisposeAsync().ConfigureAwait(false);
                    }
                    catch
                    {
                        // A dead transport may fail to dispose cleanly; the process is gone either way.
                    }
                }
            }

            if (stopping.IsCancellationRequested)
            {
                break;
            }

            Restarts++;
            var delay = TimeSpan.FromMilliseconds(Math.Min(MaxBackoff.TotalMilliseconds, 250 * Math.Pow(2, Math.Min(failures, 10))));
            NextAttemptAt = _time.GetUtcNow() + delay;
            State = UpstreamState.Down;
            LogDown(_logger, Server, LastError ?? "connection closed", delay.TotalSeconds);
            try
            {
                await Task.Delay(delay, _time, stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        State = UpstreamState.Closed;
    }

    private static string Describe(ClientCompletionDetails details) => details switch
    {
        StdioClientCompletionDetails { ExitCode: { } code } => $"process exited with code {code}",
        { Exception: { } ex } => ex.Message,
        _ => "connection closed",
    };

    private async Task<McpClient> ConnectAsync(CancellationToken stopping)
    {
        IClientTransport transport = _config.IsStdio ? CreateStdio() : CreateHttp();
        var options = new McpClientOptions
        {
            ClientInfo = new Implementation { Name = "warden", Version = GatewayInfo.Version },
            Capabilities = ClientCapabilities is { } caps
                ? new ClientCapabilities { Sampling = caps.Sampling, Elicitation = caps.Elicitation, Roots = caps.Roots }
                : new ClientCapabilities(),
            InitializationTimeout = _config.ConnectTimeout,
            Handlers = new McpClientHandlers
            {
                NotificationHandlers =
                [
                    new(NotificationMethods.LoggingMessageNotification, Relay),
                    new(NotificationMethods.ResourceUpdatedNotification, Relay),
                    new(NotificationMethods.ToolListChangedNotification, OnToolsChanged),
                    new(NotificationMethods.PromptListChangedNotification, Relay),
                    new(NotificationMethods.ResourceListChangedNotification, Relay),
                ],
            },
        };

        if (ClientCapabilities?.Sampling is not null)
        {
            options.Handlers.SamplingHandler = (request, _, ct) => _hooks.OnSamplingAsync(this, request, ct);
        }

        if (ClientCapabilities?.Elicitation is not null)
        {
            options.Handlers.ElicitationHandler = (request, ct) => _hooks.OnElicitationAsync(this, request, ct);
        }

        if (ClientCapabilities?.Roots is not null)
        {
            options.Handlers.RootsHandler = (request, ct) => _hooks.OnRootsAsync(this, request, ct);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(_config.ConnectTimeout);
        try
        {
            return await McpClient.CreateAsync(new OrderedClientTransport(transport, _progress), options, _loggerFactory, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            throw new TimeoutException($"no answer to initialize within {_config.ConnectTimeout.TotalSeconds:0.#} s");
        }
    }

    private ValueTask Relay(JsonRpcNotification notification, CancellationToken cancellationToken) =>
        _hooks.OnNotificationAsync(this, notification, cancellationToken);

    private ValueTask OnToolsChanged(JsonRpcNotification notification, CancellationToken cancellationToken)
    {
        InvalidateTools();
        return _hooks.OnNotificationAsync(this, notification, cancellationToken);
    }

    private StdioClientTransport CreateStdio()
    {
        // Children inherit nothing from Warden but the minimal defaults (PATH, HOME, ...): the SDK's default
        // of inheriting everything would hand Warden's own secrets to every tool server.
        var env = StdioClientTransportOptions.GetDefaultEnvironmentVariables();
        foreach (var (key, value) in _config.Env)
        {
            env[key] = ExpandEnvironment(value);
        }

        var command = _config.Command[0];
        if (command.Contains('/', StringComparison.Ordinal) && !Path.IsPathRooted(command))
        {
            command = Path.GetFullPath(Path.Combine(_baseDirectory, command));
        }

        var stderr = _loggerFactory.CreateLogger("Warden.Upstream." + Server + ".stderr");
        return new StdioClientTransport(
            new StdioClientTransportOptions
            {
                Name = Server,
                Command = command,
                Arguments = [.. _config.Command.Skip(1)],
                WorkingDirectory = _config.Cwd is { } cwd ? Path.GetFullPath(Path.Combine(_baseDirectory, cwd)) : _baseDirectory,
                InheritEnvironmentVariables = false,
                EnvironmentVariables = env,
                ShutdownTimeout = TimeSpan.FromSeconds(3),
                StandardErrorLines = line => LogStderr(stderr, Server, line),
            },
            _loggerFactory);
    }

    private HttpClientTransport CreateHttp()
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in _config.Headers)
        {
            headers[key] = ExpandEnvironment(value);
        }

        return new HttpClientTransport(
            new HttpClientTransportOptions
            {
                Name = Server,
                Endpoint = new Uri(_config.Url!),
                TransportMode = HttpTransportMode.StreamableHttp,
                AdditionalHeaders = headers,
                ConnectionTimeout = _config.ConnectTimeout,
            },
            _http,
            _loggerFactory,
            ownsHttpClient: false);
    }

    /// <summary>Replaces <c>${NAME}</c> with Warden's environment variable NAME, so secrets stay out of config files.</summary>
    internal static string ExpandEnvironment(string value) =>
        EnvRegex().Replace(value, m => Environment.GetEnvironmentVariable(m.Groups[1].Value) ?? "");

    public async ValueTask DisposeAsync()
    {
        // The host disposes services after the lifetime stopped them: a second call does nothing.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _lifetime.CancelAsync().ConfigureAwait(false);
        if (_loop is { } loop)
        {
            try
            {
                await loop.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }
            catch
            {
                // Shutting down regardless.
            }
        }

        State = UpstreamState.Closed;
        _lifetime.Dispose();
        _toolsGate.Dispose();
    }

    [GeneratedRegex(@"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")]
    private static partial Regex EnvRegex();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Upstream {Server} is down ({Reason}); reconnecting in {Seconds:0.##} s")]
    private static partial void LogDown(ILogger logger, string server, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Upstream {Server} reconnected")]
    private static partial void LogReconnected(ILogger logger, string server);

    [LoggerMessage(Level = LogLevel.Debug, Message = "[{Server}] {Line}")]
    private static partial void LogStderr(ILogger logger, string server, string line);
}
