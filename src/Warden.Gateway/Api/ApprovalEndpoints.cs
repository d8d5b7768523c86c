using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Warden.Core.Approvals;
using Warden.Core.Storage;
using Warden.Core.Text;
using Warden.Gateway.Approvals;
using Warden.Gateway.Security;

namespace Warden.Gateway.Api;

/// <summary>One approver's approval.</summary>
public sealed record ApprovalSignatureView(string By, DateTimeOffset At);

/// <summary>A data-guard finding, masked.</summary>
public sealed record ApprovalFindingView(string Kind, string Location, double Confidence);

/// <summary>The grant an approve-and-remember made.</summary>
public sealed record RememberView(string Id, DateTimeOffset Until);

/// <summary>An approval: exactly the call approvers decide on, and where it stands.</summary>
public sealed record ApprovalView(
    string Id,
    string State,
    string Mode,
    string Agent,
    string Session,
    string Server,
    string Tool,
    string DisplayName,
    JsonElement Arguments,
    string Digest,
    string Rule,
    string? Reason,
    string PolicyVersion,
    IReadOnlyList<string> ApproverGroups,
    bool TwoPerson,
    IReadOnlyList<ApprovalSignatureView> Approvals,
    IReadOnlyList<ApprovalFindingView> Findings,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt,
    string? DecidedBy,
    DateTimeOffset? DecidedAt,
    string? DecisionReason,
    RememberView? Remember,
    int Revision);

/// <summary>A page of approvals.</summary>
public sealed record ApprovalList(IReadOnlyList<ApprovalView> Approvals);

/// <summary>An approver's decision.</summary>
/// <param name="Decision"><c>approve</c> or <c>deny</c>.</param>
/// <param name="Digest">The digest of the call the approver was shown (from the approval view).</param>
/// <param name="Reason">Why; required to deny (the agent receives it).</param>
/// <param name="RememberFor">Approve-and-remember for this long (<c>30m</c>, <c>8h</c>, <c>2d</c>; at most 7 days).</param>
public sealed record ApprovalDecisionRequest(string Decision, string? Digest, string? Reason, string? RememberFor);

/// <summary>A remembered approval: the same tool and arguments run without asking until it ends.</summary>
public sealed record GrantView(string Id, string Agent, string Server, string Tool, JsonElement Arguments, string Rule, string By, string ApprovalId, DateTimeOffset CreatedAt, DateTimeOffset Until, DateTimeOffset? RevokedAt, string? RevokedBy);

/// <summary>Remembered approvals.</summary>
public sealed record GrantList(IReadOnlyList<GrantView> Remembered);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ApprovalView))]
[JsonSerializable(typeof(ApprovalList))]
[JsonSerializable(typeof(ApprovalDecisionRequest))]
[JsonSerializable(typeof(GrantList))]
internal sealed partial class ApprovalJsonContext : JsonSerializerContext;

/// <summary>
/// <c>/api/v1/approvals</c>: people read and decide what waits. Reading needs an operator or approver token; deciding
/// needs an approver who did not make the call and is in one of the rule's approver groups. Agents get 403 everywhere.
/// </summary>
public static class ApprovalEndpoints
{
    /// <summary>Maps the approvals API.</summary>
    public static RouteGroupBuilder MapApprovalApi(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/approvals").WithTags("approvals");
        group.MapGet("", ListAsync).RequireAuthorization(Roles.Person)
            .WithSummary("List approvals, newest first; filter by state, agent, tool (operator or approver)");
        group.MapGet("/stream", StreamAsync).RequireAuthorization(Roles.Person)
            .WithSummary("Server-sent events: every approval change, as event 'approval' (operator or approver)");
        group.MapGet("/remembered", async (bool? all, ApprovalService approvals, CancellationToken ct) =>
            Results.Ok(new GrantList([.. (await approvals.ListGrantsAsync(all == true, ct).ConfigureAwait(false)).Select(View)])))
            .RequireAuthorization(Roles.Person).WithSummary("Remembered approvals in force (all=true: also ended and revoked ones)");
        group.MapDelete("/remembered/{id}", async (string id, ClaimsPrincipal user, ApprovalService approvals, CancellationToken ct) =>
            await approvals.RevokeGrantAsync(id, user.FindFirstValue(WardenClaims.Name)!, ct).ConfigureAwait(false)
                ? Results.NoContent()
                : Results.NotFound(new ApiError("not_found", $"no remembered approval '{id}' in force")))
            .RequireAuthorization(Roles.Person).WithSummary("Revoke a remembered approval (operator or approver)");
        group.MapGet("/{id}", async (string id, ApprovalService approvals, CancellationToken ct) =>
            await approvals.GetAsync(id, ct).ConfigureAwait(false) is { } a ? Results.Ok(View(a)) : NotFound(id))
            .RequireAuthorization(Roles.Person).WithSummary("One approval, with the exact arguments and the digest to decide on (operator or approver)");
        group.MapPost("/{id}/decision", DecideAsync).RequireAuthorization(Roles.Person)
            .WithSummary("Approve or deny exactly the call shown (its digest); approve-and-remember with remember_for (approver)");
        return api;
    }

    private static IResult NotFound(string id) => Results.NotFound(new ApiError("not_found", $"no approval '{id}'"));

    private static async Task<IResult> ListAsync(string? state, string? agent, string? tool, int? limit, ApprovalService approvals, CancellationToken ct)
    {
        ApprovalState? s = null;
        if (state is { Length: > 0 })
        {
            s = ApprovalNames.ParseState(state);
            if (s is null)
            {
                return Results.BadRequest(new ApiError("invalid_state", "state must be pending, approved, denied, expired, withdrawn, voided, abandoned or executed"));
            }
        }

        var list = await approvals.ListAsync(new ApprovalQuery { State = s, Agent = agent, Tool = tool, Limit = Math.Clamp(limit ?? 100, 1, 5000) }, ct).ConfigureAwait(false);
        return Results.Ok(new ApprovalList([.. list.Select(View)]));
    }

    private static async Task<IResult> DecideAsync(string id, ApprovalDecisionRequest request, ClaimsPrincipal user, ApprovalService approvals, CancellationToken ct)
    {
        var verdict = request.Decision switch
        {
            "approve" => ApprovalVerdict.Approve,
            "deny" => ApprovalVerdict.Deny,
            _ => (ApprovalVerdict?)null,
        };
        if (verdict is null)
        {
            return Results.BadRequest(new ApiError("invalid_decision", "decision must be approve or deny"));
        }

        TimeSpan? remember = null;
        if (request.RememberFor is { Length: > 0 } text)
        {
            if (!YamlReader.TryParseDuration(text, out var span))
            {
                return Results.BadRequest(new ApiError("invalid_duration", $"remember_for '{text}' is not a duration such as 30m, 8h or 2d"));
            }

            remember = span;
        }

        var decider = new Decider(user.FindFirstValue(WardenClaims.Kind) ?? "", user.FindFirstValue(WardenClaims.Name) ?? "", [.. user.FindAll(WardenClaims.Group).Select(c => c.Value)]);
        var change = await approvals.DecideAsync(id, decider, verdict.Value, request.Digest, request.Reason, remember, ct).ConfigureAwait(false);
        return change switch
        {
            { Updated: { } updated } => Results.Ok(View(updated)),
            { Status: 404 } => NotFound(id),
            { Status: 403 } => Results.Json(new ApiError("forbidden", change.Error!), ApiJsonContext.Default.ApiError, statusCode: StatusCodes.Status403Forbidden),
            { Status: 400 } => Results.BadRequest(new ApiError("invalid_request", change.Error!)),
            _ => Results.Conflict(new ApiError("conflict", change.Error!)),
        };
    }

    private static async Task StreamAsync(HttpContext http, ApprovalService approvals, CancellationToken ct)
    {
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        var queue = Channel.CreateBounded<ApprovalRecord>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        void OnChanged(ApprovalRecord a) => queue.Writer.TryWrite(a);

        // A change reaches this stream twice (from the process that made it, and from the store's change feed), and
        // the feed's copy, read a moment earlier, can arrive after a newer one: a watcher must never see an approval
        // go back to pending once it was decided, so each approval's revisions leave here only in increasing order.
        var sent = new RevisionFilter();
        approvals.Changed += OnChanged;
        try
        {
            await http.Response.WriteAsync(": approvals\n\n", ct).ConfigureAwait(false);
            await http.Response.Body.FlushAsync(ct).ConfigureAwait(false);
            while (!ct.IsCancellationRequested)
            {
                using var keepAlive = CancellationTokenSource.CreateLinkedTokenSource(ct);
                keepAlive.CancelAfter(TimeSpan.FromSeconds(15));
                try
                {
                    var a = await queue.Reader.ReadAsync(keepAlive.Token).ConfigureAwait(false);
                    if (!sent.IsNewer(a))
                    {
                        continue;
                    }

                    await http.Response.WriteAsync($"event: approval\ndata: {JsonSerializer.Serialize(View(a), ApprovalJsonContext.Default.ApprovalView)}\n\n", ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    // Proxies close idle streams; a comment keeps this one open.
                    await http.Response.WriteAsync(": keep-alive\n\n", ct).ConfigureAwait(false);
                }

                await http.Response.Body.FlushAsync(ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // The client went away.
        }
        finally
        {
            approvals.Changed -= OnChanged;
        }
    }

    internal static ApprovalView View(ApprovalRecord a)
    {
        using var args = JsonDocument.Parse(a.ArgumentsJson);
        return new ApprovalView(
            a.Id, ApprovalNames.Name(a.State), ApprovalNames.Name(a.Mode), a.Agent, a.Session, a.Server, a.Tool, a.DisplayName,
            args.RootElement.Clone(), a.Digest, a.Rule, a.Reason, a.PolicyVersion, a.ApproverGroups, a.TwoPerson,
            [.. a.Approvals.Select(s => new ApprovalSignatureView(s.By, s.At))],
            [.. a.Findings.Select(f => new ApprovalFindingView(f.Kind, f.Location, f.Confidence))],
            a.CreatedAt, a.ExpiresAt, a.DecidedBy, a.DecidedAt, a.DecisionReason,
            a.RememberId is { } rid && a.RememberUntil is { } until ? new RememberView(rid, until) : null,
            a.Revision);
    }

    private static GrantView View(RememberedGrant g)
    {
        using var args = JsonDocument.Parse(g.ArgumentsJson);
        return new GrantView(g.Id, g.Agent, g.Server, g.Tool, args.RootElement.Clone(), g.Rule, g.By, g.ApprovalId, g.CreatedAt, g.Until, g.RevokedAt, g.RevokedBy);
    }
}
