using System.Text.Json;
using System.Text.Json.Serialization;

namespace Warden.Gateway.Api;

/// <summary>GET /api/v1/status.</summary>
public sealed record StatusResponse(string Version, DateTimeOffset StartedAt, PolicyStatus Policy, IReadOnlyList<UpstreamStatus> Upstreams, IReadOnlyList<SessionStatus> Sessions, IReadOnlyList<AgentStatus>? Agents = null);

/// <summary>One agent: its groups and live sessions.</summary>
public sealed record AgentStatus(string Name, IReadOnlyList<string> Groups, string State, int Sessions, string? StoppedBy = null, string? StopReason = null, IReadOnlyList<LimitLevel>? Limits = null, IReadOnlyList<Stops.DenialView>? RecentDenials = null, IReadOnlyList<DataLabelView>? Labels = null);

/// <summary>A data label an agent carries after reading labelled data (docs/data-guard.md): until when, and the session for a per-session label.</summary>
public sealed record DataLabelView(string Label, DateTimeOffset Until, string? Session);

/// <summary>A limit's current level for an agent.</summary>
public sealed record LimitLevel(string Id, string Kind, double Used, int Capacity, string Describe);

/// <summary>The policy in force and the last rejected reload.</summary>
public sealed record PolicyStatus(string Version, int Rules, DateTimeOffset? LoadedAt, DateTimeOffset? RejectedAt, IReadOnlyList<string>? RejectedProblems);

/// <summary>One upstream's health.</summary>
public sealed record UpstreamStatus(string Name, string Transport, string State, string Connection, string? Server, string? LastError, int Restarts);

/// <summary>One live agent session.</summary>
public sealed record SessionStatus(string Id, string Agent, DateTimeOffset StartedAt, int InFlight);

/// <summary>POST /api/v1/agents, /operators, /approvers.</summary>
public sealed record AddPrincipalRequest(string Name, IReadOnlyList<string>? Groups);

/// <summary>The answer to adding a principal: the token, shown once.</summary>
public sealed record AddPrincipalResponse(string Kind, string Name, string Token, IReadOnlyList<string> Groups);

/// <summary>A principal as listed.</summary>
public sealed record PrincipalView(string Kind, string Name, IReadOnlyList<string> Groups, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt, AgentStatus? Status = null);

/// <summary>POST /api/v1/policy/reload.</summary>
public sealed record ReloadResponse(bool Loaded, string Version, IReadOnlyList<string> Errors, IReadOnlyList<string> Warnings);

/// <summary>An API error.</summary>
public sealed record ApiError(string Error, string Message);

/// <summary>GET /api/v1/whoami.</summary>
public sealed record WhoAmI(string Kind, string Name, IReadOnlyList<string> Groups);

/// <summary>Source-generated JSON for the API: no reflection on the request path.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(StatusResponse))]
[JsonSerializable(typeof(AddPrincipalRequest))]
[JsonSerializable(typeof(AddPrincipalResponse))]
[JsonSerializable(typeof(List<PrincipalView>))]
[JsonSerializable(typeof(ReloadResponse))]
[JsonSerializable(typeof(ApiError))]
[JsonSerializable(typeof(WhoAmI))]
[JsonSerializable(typeof(AgentStatus))]
[JsonSerializable(typeof(List<AgentStatus>))]
[JsonSerializable(typeof(CallsResponse))]
public sealed partial class ApiJsonContext : JsonSerializerContext;
