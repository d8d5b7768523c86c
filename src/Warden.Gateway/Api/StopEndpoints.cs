using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Warden.Core.Stops;
using Warden.Gateway.Security;
using Warden.Gateway.Stops;

namespace Warden.Gateway.Api;

/// <summary>POST /api/v1/stops.</summary>
/// <param name="Scope">agent, session, server or all.</param>
/// <param name="Target">The agent, session (<c>agent/transport-session</c>) or server; empty for all.</param>
/// <param name="Reason">Why; the agent is told.</param>
public sealed record StopRequest(string Scope, string? Target, string? Reason);

/// <summary>POST /api/v1/stops/resume: by id, or every stop of a scope and target.</summary>
public sealed record ResumeRequest(string? Id, string? Scope, string? Target, string Reason);

/// <summary>A stop as the API shows it.</summary>
public sealed record StopView(string Id, string Scope, string Target, string By, string Reason, DateTimeOffset At, bool Pause);

/// <summary>The acknowledgement of a stop.</summary>
public sealed record StopAck(StopView Stop, bool Recorded, int Cancelled, string Message);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(StopRequest))]
[JsonSerializable(typeof(ResumeRequest))]
[JsonSerializable(typeof(StopAck))]
[JsonSerializable(typeof(List<StopView>))]
internal sealed partial class StopJsonContext : JsonSerializerContext;

/// <summary>Stop and resume: operators only, never an agent or an approver.</summary>
public static class StopEndpoints
{
    /// <summary>Maps <c>/api/v1/stops</c>.</summary>
    public static RouteGroupBuilder MapStopApi(this RouteGroupBuilder api)
    {
        api.MapGet("/stops", (StopService stops) => Results.Ok(stops.Active.Select(View).ToList()))
            .RequireAuthorization(Roles.Operator).WithSummary("The stops and pauses in force (operator)");
        api.MapPost("/stops", async (StopRequest request, ClaimsPrincipal user, StopService stops, CancellationToken ct) =>
        {
            if (ParseScope(request.Scope) is not { } scope)
            {
                return Results.BadRequest(new ApiError("invalid_scope", "scope must be agent, session, server or all"));
            }

            if (scope != StopScope.All && string.IsNullOrWhiteSpace(request.Target))
            {
                return Results.BadRequest(new ApiError("invalid_target", $"a {request.Scope} stop needs a target"));
            }

            var ack = await stops.StopAsync(scope, request.Target ?? "", user.FindFirstValue(WardenClaims.Name)!, request.Reason is { Length: > 0 } r ? r : "no reason given", cancellationToken: ct).ConfigureAwait(false);
            return Results.Ok(new StopAck(View(ack.Stop), ack.Recorded, ack.Cancelled, ack.Message));
        }).RequireAuthorization(Roles.Operator).WithSummary("Stop an agent, a session, a server or everything; acknowledged once in effect (operator)");
        api.MapPost("/stops/resume", async (ResumeRequest request, ClaimsPrincipal user, StopService stops, Core.Limits.LimitCounters limits, CancellationToken ct) =>
        {
            if (string.IsNullOrWhiteSpace(request.Reason))
            {
                return Results.BadRequest(new ApiError("reason_required", "a resume needs a reason; it is recorded"));
            }

            StopScope? scope = null;
            if (request.Id is null && (scope = ParseScope(request.Scope)) is null)
            {
                return Results.BadRequest(new ApiError("invalid_request", "give the stop's id, or its scope (agent, session, server, all) and target"));
            }

            var lifted = await stops.ResumeAsync(request.Id, scope, request.Target, user.FindFirstValue(WardenClaims.Name)!, request.Reason, ct).ConfigureAwait(false);
            foreach (var pause in lifted.Where(s => s.IsPause && s.Scope == StopScope.Agent && s.By.StartsWith("breaker:", StringComparison.Ordinal)))
            {
                // The resume starts the breaker's window afresh for this agent, or its next call would trip it again.
                limits.Reset(pause.By["breaker:".Length..], pause.Target);
            }

            return lifted.Count == 0
                ? Results.NotFound(new ApiError("not_stopped", "no stop in force matches"))
                : Results.Ok(lifted.Select(View).ToList());
        }).RequireAuthorization(Roles.Operator).WithSummary("Lift stops, with a reason (operator)");
        return api;
    }

    private static StopScope? ParseScope(string? s) => s switch
    {
        "agent" => StopScope.Agent,
        "session" => StopScope.Session,
        "server" => StopScope.Server,
        "all" => StopScope.All,
        _ => null,
    };

    private static StopView View(StopRecord s) => new(s.Id, s.Scope.ToString().ToLowerInvariant(), s.Target, s.By, s.Reason, s.At, s.IsPause);
}
