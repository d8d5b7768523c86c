using System.Security.Claims;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Warden.Core.Identity;
using Warden.Core.Storage;
using Warden.Gateway.Policy;
using Warden.Gateway.Security;

namespace Warden.Gateway.Api;

/// <summary>The operator and approver HTTP API under <c>/api/v1</c>.</summary>
public static partial class ApiEndpoints
{
    /// <summary>Maps every API endpoint.</summary>
    public static IEndpointRouteBuilder MapWardenApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1");
        api.MapGet("/health", () => Results.Ok(new ApiError("ok", "alive"))).AllowAnonymous().WithSummary("Liveness");
        api.MapGet("/whoami", (ClaimsPrincipal user) => Results.Ok(new WhoAmI(
            user.FindFirstValue(WardenClaims.Kind) ?? "", user.FindFirstValue(WardenClaims.Name) ?? "", [.. user.FindAll(WardenClaims.Group).Select(c => c.Value)])))
            .RequireAuthorization().WithSummary("The caller's kind, name and groups");
        api.MapGet("/status", async (IServiceProvider sp, IWardenStore store, CancellationToken ct) =>
        {
            var snapshot = sp.GetRequiredService<GatewayState>().Snapshot();
            var agents = (await store.ListPrincipalsAsync(PrincipalKind.Agent, false, ct).ConfigureAwait(false))
                .Select(a => AgentState(sp, a, snapshot)).ToList();
            return Results.Ok(snapshot with { Agents = agents });
        }).RequireAuthorization(Roles.Operator).WithSummary("Upstreams, agents, sessions and the policy in force (operator)");

        foreach (var (route, kind) in new[] { ("agents", PrincipalKind.Agent), ("operators", PrincipalKind.Operator), ("approvers", PrincipalKind.Approver) })
        {
            api.MapGet("/" + route, async (IServiceProvider sp, IWardenStore store, bool? all, CancellationToken ct) =>
            {
                var list = await store.ListPrincipalsAsync(kind, all ?? false, ct).ConfigureAwait(false);
                if (kind != PrincipalKind.Agent)
                {
                    return Results.Ok(list.Select(View).ToList());
                }

                // Agents come with their state: active, stopped or paused; limit levels; recent denials.
                var snapshot = sp.GetRequiredService<GatewayState>().Snapshot();
                return Results.Ok(list.Select(p => View(p) with { Status = p.IsActive ? AgentState(sp, p, snapshot) : null }).ToList());
            }).RequireAuthorization(Roles.Operator).WithSummary($"List {route} (operator)");

            api.MapPost("/" + route, async (AddPrincipalRequest request, IWardenStore store, TimeProvider time, CancellationToken ct) =>
            {
                if (!NameRegex().IsMatch(request.Name ?? ""))
                {
                    return Results.BadRequest(new ApiError("invalid_name", "names are 1-64 letters, digits, '.', '-' or '_'"));
                }

                var token = Tokens.Create(kind);
                var groups = request.Groups ?? [];
                var added = await store.AddPrincipalAsync(new Principal(kind, request.Name!, groups, time.GetUtcNow()), Tokens.Hash(token), ct).ConfigureAwait(false);
                if (!added)
                {
                    return Results.Conflict(new ApiError("exists", $"{kind.ToString().ToLowerInvariant()} '{request.Name}' exists; revoke it first to issue a new token"));
                }

                await store.PublishChangeAsync(ChangeTopics.Principal, request.Name!, "added", ct).ConfigureAwait(false);
                return Results.Ok(new AddPrincipalResponse(kind.ToString().ToLowerInvariant(), request.Name!, token, groups));
            }).RequireAuthorization(Roles.Operator).WithSummary($"Add one of the {route}; the token is in the answer, once (operator)");

            api.MapDelete("/" + route + "/{name}", async (string name, ClaimsPrincipal user, IWardenStore store, TimeProvider time, CancellationToken ct) =>
            {
                if (kind == PrincipalKind.Operator && name == user.FindFirstValue(WardenClaims.Name))
                {
                    var operators = await store.ListPrincipalsAsync(PrincipalKind.Operator, false, ct).ConfigureAwait(false);
                    if (operators.Count <= 1)
                    {
                        return Results.Conflict(new ApiError("last_operator", "refusing to revoke the last operator: nobody could administer Warden afterwards"));
                    }
                }

                var revoked = await store.RevokePrincipalAsync(kind, name, time.GetUtcNow(), ct).ConfigureAwait(false);
                if (!revoked)
                {
                    return Results.NotFound(new ApiError("not_found", $"no active {kind.ToString().ToLowerInvariant()} named '{name}'"));
                }

                await store.PublishChangeAsync(ChangeTopics.Principal, name, "revoked", ct).ConfigureAwait(false);
                return Results.NoContent();
            }).RequireAuthorization(Roles.Operator).WithSummary($"Revoke one of the {route} (operator)");
        }

        api.MapDecisionApi();
        api.MapStopApi();
        api.MapCallApi();
        api.MapApprovalApi();

        api.MapPost("/policy/reload", async (PolicyService policy, CancellationToken ct) =>
        {
            var result = await policy.ReloadAsync("requested through the API", ct).ConfigureAwait(false);
            return Results.Ok(new ReloadResponse(
                result.Success,
                result.Policy?.Version ?? "unchanged",
                [.. result.Diagnostics.Where(d => !d.IsWarning).Select(d => d.ToString())],
                [.. result.Diagnostics.Where(d => d.IsWarning).Select(d => d.ToString())]));
        }).RequireAuthorization(Roles.Operator).WithSummary("Reload the policy; a bad one is rejected and the last good one stays (operator)");

        return app;
    }

    private static AgentStatus AgentState(IServiceProvider sp, Principal agent, StatusResponse snapshot)
    {
        var policy = sp.GetRequiredService<Core.Policy.PolicyHolder>().Current;
        var stop = sp.GetRequiredService<Core.Stops.StopTable>().ForAgent(agent.Name);
        var counters = sp.GetRequiredService<Core.Limits.LimitCounters>();
        var levels = new List<LimitLevel>();
        foreach (var limit in policy?.Limits ?? [])
        {
            var key = limit.Per == Core.Limits.LimitPer.Global ? "" : agent.Name;
            if (counters.Level(limit, key) is { } level)
            {
                levels.Add(new LimitLevel(limit.Id, limit.Kind.ToString().ToLowerInvariant(), Math.Round(level.Used, 2), level.Capacity, limit.Describe()));
            }
        }

        return new AgentStatus(
            agent.Name,
            [.. agent.Groups.Concat(policy?.GroupsOf(agent.Name) ?? []).Distinct(StringComparer.Ordinal)],
            stop is null ? "active" : stop.IsPause ? "paused" : "stopped",
            snapshot.Sessions.Count(s => s.Agent == agent.Name),
            stop?.By,
            stop?.Reason,
            levels,
            sp.GetRequiredService<Stops.DenialLog>().Recent(agent.Name),
            [.. sp.GetRequiredService<Core.DataGuard.LabelTable>().Describe(agent.Name, sp.GetRequiredService<TimeProvider>().GetUtcNow())
                .Select(l => new DataLabelView(l.Label, l.Until, l.Session))]);
    }

    private static PrincipalView View(Principal p) => new(p.Kind.ToString().ToLowerInvariant(), p.Name, p.Groups, p.CreatedAt, p.RevokedAt);

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")]
    private static partial Regex NameRegex();
}
