using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Warden.Gateway.Stops;

namespace Warden.Gateway.Api;

/// <summary>One call forwarded and not yet answered.</summary>
/// <param name="Id">The tracker's number for it (since start).</param>
/// <param name="Agent">The agent.</param>
/// <param name="Session">The Warden session.</param>
/// <param name="Server">The upstream.</param>
/// <param name="Tool">The tool, resource or prompt as the agent named it.</param>
/// <param name="ReceivedAt">When it arrived.</param>
/// <param name="Seconds">How long it has been running.</param>
/// <param name="Cancelling">A stop cancelled it and the upstream has not answered yet.</param>
public sealed record CallView(long Id, string Agent, string Session, string Server, string Tool, DateTimeOffset ReceivedAt, double Seconds, bool Cancelling);

/// <summary>GET /api/v1/calls.</summary>
/// <param name="Calls">The calls in flight, oldest first.</param>
/// <param name="Forwarded">Calls forwarded since the gateway started.</param>
public sealed record CallsResponse(IReadOnlyList<CallView> Calls, long Forwarded);

/// <summary>What is running now, for operators (the dashboard's live view).</summary>
public static class CallEndpoints
{
    /// <summary>Maps <c>GET /api/v1/calls</c>.</summary>
    public static RouteGroupBuilder MapCallApi(this RouteGroupBuilder api)
    {
        api.MapGet("/calls", (IServiceProvider sp, TimeProvider time) =>
        {
            var tracker = (CallTracker)sp.GetService(typeof(CallTracker))!;
            var now = time.GetUtcNow();
            var calls = tracker.InFlight()
                .Select(e => new CallView(e.Id, e.Call.Agent.Name, e.Call.SessionId, e.Call.Server, e.Call.DisplayName, e.Call.ReceivedAt,
                    Math.Round(Math.Max(0, (now - e.Call.ReceivedAt).TotalSeconds), 3), e.CancelledBecause is not null))
                .ToList();
            return Results.Ok(new CallsResponse(calls, tracker.Registered));
        }).RequireAuthorization(Roles.Operator).WithSummary("Calls forwarded and not yet answered (operator)");
        return api;
    }
}
