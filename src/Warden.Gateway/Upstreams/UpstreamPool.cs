using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Protocol;
using Warden.Gateway.Configuration;
using Warden.Gateway.Mcp;

namespace Warden.Gateway.Upstreams;

/// <summary>
/// Owns every upstream connection. A shared upstream has one connection for all agents; a per-agent or
/// per-session upstream gets one per agent or per session, created on first use and closed when its last
/// session ends. Every upstream also has one shared "catalog" connection, started with Warden, whose
/// health and capabilities <c>warden status</c> shows and whose tool list decides what exists.
/// </summary>
internal sealed class UpstreamPool : IAsyncDisposable
{
    private readonly WardenConfig _config;
    private readonly IUpstreamHooks _hooks;
    private readonly ILoggerFactory _loggerFactory;
    private readonly TimeProvider _time;
    private readonly HttpClient _http;
    private readonly Dictionary<string, UpstreamConnection> _catalog = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, AgentConnection> _perAgent = new(StringComparer.Ordinal);
    private readonly Lock _perAgentGate = new();
    private int _disposed;

    public UpstreamPool(WardenConfig config, IUpstreamHooks hooks, ProgressRelay progress, ILoggerFactory loggerFactory, TimeProvider time)
    {
        _config = config;
        _hooks = hooks;
        Progress = progress;
        _loggerFactory = loggerFactory;
        _time = time;
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = Timeout.InfiniteTimeSpan };
        foreach (var (name, server) in config.Servers)
        {
            _catalog[name] = Create(server, scope: "", clientCapabilities: null);
        }
    }

    /// <summary>The relay for progress notifications of every connection.</summary>
    public ProgressRelay Progress { get; }

    /// <summary>Configured upstream names, in config order.</summary>
    public IEnumerable<string> Servers => _config.Servers.Keys;

    /// <summary>The shared connection of each upstream.</summary>
    public IReadOnlyDictionary<string, UpstreamConnection> Catalog => _catalog;

    /// <summary>Starts every shared connection in the background.</summary>
    public void Start()
    {
        foreach (var c in _catalog.Values)
        {
            c.Start();
        }
    }

    /// <summary>Completes when every upstream had its first connection attempt, or the timeout passed.</summary>
    public Task WaitForFirstAttemptsAsync(TimeSpan timeout) =>
        Task.WhenAll(_catalog.Values.Select(c => c.FirstAttempt)).WaitAsync(timeout).ContinueWith(_ => { }, TaskScheduler.Default);

    /// <summary>True when the server exists in config.</summary>
    public bool Exists(string server) => _catalog.ContainsKey(server);

    /// <summary>The connection a session uses for a server, created on first use for per-agent and per-session upstreams.</summary>
    public async ValueTask<UpstreamConnection> GetAsync(string server, AgentSession session, CancellationToken cancellationToken)
    {
        var catalog = _catalog[server];
        var sharing = catalog.Config.Connection;

        // A stateless transport has no lasting session to own a connection: fall back to one per agent.
        if (sharing == ConnectionSharing.PerSession && !session.IsStateful)
        {
            sharing = ConnectionSharing.PerAgent;
        }

        switch (sharing)
        {
            case ConnectionSharing.Shared:
                return catalog;

            case ConnectionSharing.PerSession:
            {
                var own = session.OwnConnections.GetOrAdd(server, _ =>
                {
                    var c = Create(catalog.Config, session.Id, session.Server.ClientCapabilities);
                    c.Start();
                    return c;
                });
                await own.FirstAttempt.WaitAsync(catalog.Config.ConnectTimeout + TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
                return own;
            }

            default:
            {
                var key = server + "\n" + session.Agent.Name;
                AgentConnection entry;
                lock (_perAgentGate)
                {
                    entry = _perAgent.GetOrAdd(key, _ =>
                    {
                        var c = Create(catalog.Config, session.Agent.Name, session.Server.ClientCapabilities);
                        c.Start();
                        return new AgentConnection(c);
                    });
                    if (entry.Sessions.TryAdd(session.Id, session))
                    {
                        session.OwnConnections.TryAdd("agent:" + server, entry.Connection);
                    }
                }

                await entry.Connection.FirstAttempt.WaitAsync(catalog.Config.ConnectTimeout + TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
                return entry.Connection;
            }
        }
    }

    /// <summary>Sessions of an agent that use a per-agent connection, newest last.</summary>
    public IReadOnlyCollection<AgentSession> SessionsOf(UpstreamConnection connection)
    {
        var key = connection.Server + "\n" + connection.Scope;
        return _perAgent.TryGetValue(key, out var entry) ? [.. entry.Sessions.Values] : [];
    }

    /// <summary>Closes the connections a session owned when it ends.</summary>
    public async ValueTask ReleaseAsync(AgentSession session)
    {
        // Stateless sessions last one request; per-agent connections they used stay for the agent's next request.
        if (!session.IsStateful)
        {
            return;
        }

        foreach (var (key, connection) in session.OwnConnections)
        {
            if (key.StartsWith("agent:", StringComparison.Ordinal))
            {
                var poolKey = connection.Server + "\n" + connection.Scope;
                var close = false;
                lock (_perAgentGate)
                {
                    if (_perAgent.TryGetValue(poolKey, out var entry))
                    {
                        entry.Sessions.TryRemove(session.Id, out _);
                        if (entry.Sessions.IsEmpty)
                        {
                            _perAgent.TryRemove(poolKey, out _);
                            close = true;
                        }
                    }
                }

                if (close)
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                }
            }
            else
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }

        session.OwnConnections.Clear();
    }

    private UpstreamConnection Create(ServerConfig server, string scope, ClientCapabilities? clientCapabilities) =>
        new(server, scope, clientCapabilities, _hooks, Progress, _http, _config.BaseDirectory, _loggerFactory, _time);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        var all = _catalog.Values.Concat(_perAgent.Values.Select(e => e.Connection)).ToList();
        await Task.WhenAll(all.Select(c => c.DisposeAsync().AsTask())).ConfigureAwait(false);
        _http.Dispose();
    }

    private sealed class AgentConnection(UpstreamConnection connection)
    {
        public UpstreamConnection Connection { get; } = connection;

        public ConcurrentDictionary<string, AgentSession> Sessions { get; } = new(StringComparer.Ordinal);
    }
}
