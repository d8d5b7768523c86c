using Warden.Core.Policy;
using Warden.Gateway.Mcp;

namespace Warden.Gateway;

/// <summary>What <c>warden status</c> reports.</summary>
internal sealed class GatewayState(McpGateway gateway, PolicyHolder policy, TimeProvider time)
{
    public DateTimeOffset StartedAt { get; } = time.GetUtcNow();

    public Api.StatusResponse Snapshot()
    {
        var upstreams = gateway.Pool.Catalog.Values.Select(c => new Api.UpstreamStatus(
            c.Server,
            c.Config.IsStdio ? "stdio" : "http",
            c.State.ToString().ToLowerInvariant(),
            c.Config.Connection switch
            {
                Configuration.ConnectionSharing.PerAgent => "per_agent",
                Configuration.ConnectionSharing.PerSession => "per_session",
                _ => "shared",
            },
            c.ServerInfo is { } info ? $"{info.Name} {info.Version}" : null,
            c.LastError,
            c.Restarts)).ToList();
        var sessions = gateway.Sessions.Select(s => new Api.SessionStatus(s.Id, s.Agent.Name, s.StartedAt, s.InFlight)).ToList();
        var p = policy.Current;
        return new Api.StatusResponse(
            GatewayInfo.Version,
            StartedAt,
            new Api.PolicyStatus(policy.Version, p?.Rules.Count ?? 0, policy.LoadedAt, policy.LastRejection?.At, policy.LastRejection?.Problems),
            upstreams,
            sessions);
    }
}
