using System.Collections.Concurrent;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;
using Warden.Core.Pipeline;

namespace Warden.Gateway.Mcp;

/// <summary>
/// One agent session on the MCP endpoint: the agent plus the transport's session id, or the agent alone
/// when the transport has none (stateless mode). Counts and labels of later features attach here.
/// </summary>
internal sealed class AgentSession
{
    public AgentSession(McpServer server, AgentIdentity agent, string? transportSessionId, DateTimeOffset startedAt)
    {
        Server = server;
        Agent = agent;
        TransportSessionId = transportSessionId;
        Id = transportSessionId is null ? agent.Name : agent.Name + "/" + transportSessionId;
        StartedAt = startedAt;
    }

    /// <summary>The downstream MCP session (Warden's server side of the agent's connection).</summary>
    public McpServer Server { get; }

    /// <summary>The authenticated agent.</summary>
    public AgentIdentity Agent { get; }

    /// <summary>The transport's session id (<c>Mcp-Session-Id</c>), when there is one.</summary>
    public string? TransportSessionId { get; }

    /// <summary>The Warden session id: <c>agent/transport-session</c>, or the agent's name.</summary>
    public string Id { get; }

    /// <summary>When the session started.</summary>
    public DateTimeOffset StartedAt { get; }

    /// <summary>True when the session can receive unsolicited messages (stateful transport).</summary>
    public bool IsStateful => TransportSessionId is not null;

    /// <summary>The logging level the agent asked for; null until it asks.</summary>
    public LoggingLevel? LoggingLevel { get; set; }

    /// <summary>Resource URIs the agent subscribed to, with the upstream that serves each.</summary>
    public ConcurrentDictionary<string, string> Subscriptions { get; } = new(StringComparer.Ordinal);

    /// <summary>Upstream connections that belong to this session alone, by server.</summary>
    public ConcurrentDictionary<string, Upstreams.UpstreamConnection> OwnConnections { get; } = new(StringComparer.Ordinal);

    /// <summary>Calls in flight, for status.</summary>
    public int InFlight;

    private long _nextRequest;

    /// <summary>
    /// The request-bound servers of calls in flight. A notification an upstream sends while serving a call
    /// (logging during a tool call) goes out through the call's own response stream, where clients expect it.
    /// </summary>
    public ConcurrentDictionary<long, McpServer> ActiveRequests { get; } = new();

    /// <summary>Registers a call's request-bound server until the returned handle is disposed.</summary>
    public ActiveRequest Track(McpServer requestServer)
    {
        var id = Interlocked.Increment(ref _nextRequest);
        ActiveRequests[id] = requestServer;
        return new ActiveRequest(this, id);
    }

    /// <summary>Where to send a notification related to this session's current work.</summary>
    public McpServer NotificationTarget => ActiveRequests.IsEmpty ? Server : ActiveRequests.Values.FirstOrDefault() ?? Server;

    /// <summary>Unregisters a call.</summary>
    public readonly struct ActiveRequest(AgentSession session, long id) : IDisposable
    {
        /// <inheritdoc />
        public void Dispose() => session.ActiveRequests.TryRemove(id, out _);
    }
}
