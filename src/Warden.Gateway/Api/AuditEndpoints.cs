using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using Warden.Core.Audit;
using Warden.Gateway.Audit;

namespace Warden.Gateway.Api;

/// <summary>The audit API for operators (search also for approvers): <c>GET /api/v1/audit</c> (query) and <c>GET /api/v1/audit/verify</c>.</summary>
public static class AuditEndpoints
{
    /// <summary>Adds the audit's request recording and maps its endpoints. Call after <c>UseAuthorization</c>.</summary>
    public static WebApplication MapWardenAudit(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseMiddleware<AuditMiddleware>();
        var api = app.MapGroup("/api/v1/audit").WithTags("audit");

        // Approvers read too: deciding a held call well needs the agent's recent calls (the dashboard shows them).
        api.MapGet("", QueryAsync).RequireAuthorization(Roles.Person)
            .WithSummary("Search the audit log")
            .WithDescription("Records matching every given filter, oldest first. `newest=true` returns the newest `limit` matches (what `warden audit tail` shows); `after` pages forward.");
        api.MapGet("/verify", VerifyAsync).RequireAuthorization(Roles.Operator)
            .WithSummary("Verify the audit chain")
            .WithDescription("Recomputes every record's hash and link and compares the end with the head; names the first bad record.");
        return app;
    }

    private static async Task<Results<Ok<AuditPage>, BadRequest<ApiError>>> QueryAsync(
        [FromServices] IServiceProvider services,
        string? agent, string? session, string? server, string? tool, string? effect, string? rule, string? kind, string? call,
        DateTimeOffset? from, DateTimeOffset? to, string? text, long? after, int? limit, bool? newest, CancellationToken ct)
    {
        if (limit is < 1 or > 10_000)
        {
            return TypedResults.BadRequest(new ApiError("invalid_limit", "limit must be 1-10000"));
        }

        var audit = services.GetRequiredService<AuditLog>();
        var query = new AuditQuery
        {
            Agent = agent, Session = session, Server = server, Tool = tool, Effect = effect, Rule = rule, Kind = kind, Call = call,
            From = from, To = to, Text = text, AfterSeq = after, Limit = limit ?? 100, Newest = newest ?? false,
        };
        var events = await audit.Store.QueryAsync(query, ct).ConfigureAwait(false);
        var head = await audit.Store.GetHeadAsync(ct).ConfigureAwait(false);
        return TypedResults.Ok(new AuditPage([.. events.Select(AuditRecordView.From)], head.Seq));
    }

    private static async Task<Ok<AuditVerifyView>> VerifyAsync([FromServices] IServiceProvider services, CancellationToken ct)
    {
        var audit = services.GetRequiredService<AuditLog>();
        var result = await Task.Run(audit.Store.Verify, ct).ConfigureAwait(false);
        return TypedResults.Ok(new AuditVerifyView(result.Ok, result.Damage.ToString().ToLowerInvariant(), result.BadSeq, result.Message, result.Verified, result.LastSeq));
    }
}
