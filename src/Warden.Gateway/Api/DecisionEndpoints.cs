using System.Collections.Concurrent;
using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Warden.Core;
using Warden.Core.Pipeline;
using Warden.Core.Policy;
using Warden.Core.Storage;
using Warden.Gateway.Configuration;
using Warden.Gateway.Mcp;
using Warden.Gateway.Security;

namespace Warden.Gateway.Api;

/// <summary>POST /api/v1/decide: a call an agent wants to make outside the gateway.</summary>
/// <param name="Tool">The tool as agents see it (<c>server__tool</c>), or the tool alone with <paramref name="Server"/>.</param>
/// <param name="Server">The server, when <paramref name="Tool"/> is not prefixed.</param>
/// <param name="Arguments">The arguments, a JSON object.</param>
/// <param name="Session">The caller's session id; the agent alone when absent.</param>
/// <param name="Method">tools/call (default), resources/read or prompts/get.</param>
/// <param name="Annotations">The tool's MCP annotations as the caller knows them; absent means unannotated (treated as the most dangerous kind).</param>
public sealed record DecideRequest(string Tool, string? Server, JsonElement? Arguments, string? Session, string? Method, ToolAnnotationsView? Annotations);

/// <summary>MCP tool annotations.</summary>
public sealed record ToolAnnotationsView(bool? ReadOnlyHint, bool? DestructiveHint, bool? OpenWorldHint);

/// <summary>A decision, as the decision API returns it.</summary>
/// <param name="DecisionId">Names the decision in wait and outcome calls.</param>
/// <param name="Effect">allow, deny, ask, shadow or error.</param>
/// <param name="Forward">True when the caller may perform the call now.</param>
/// <param name="Rule">The deciding rule.</param>
/// <param name="Reason">Why; for a refused call, what to tell the model.</param>
/// <param name="PolicyVersion">The policy version.</param>
/// <param name="Status">decided, pending, completed or failed.</param>
public sealed record DecisionView(string DecisionId, string Effect, bool Forward, string Rule, string? Reason, string PolicyVersion, string Status, string? ApprovalId = null);

/// <summary>POST /api/v1/decisions/{id}/outcome.</summary>
/// <param name="Status">completed or failed.</param>
/// <param name="Error">The failure, when failed.</param>
/// <param name="DurationMs">How long the call took.</param>
public sealed record OutcomeRequest(string Status, string? Error, double? DurationMs);

/// <summary>An event for an agent: a stop, a pause, a resume.</summary>
public sealed record AgentEvent(long Id, string Kind, string Agent, string? Detail, DateTimeOffset At);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(DecideRequest))]
[JsonSerializable(typeof(DecisionView))]
[JsonSerializable(typeof(OutcomeRequest))]
[JsonSerializable(typeof(AgentEvent))]
internal sealed partial class DecisionJsonContext : JsonSerializerContext;

/// <summary>
/// Decisions made through the API, kept in memory until their outcome is recorded or they expire.
/// The decision itself comes from the same <see cref="ICallDecider"/> the MCP endpoint uses, so a call
/// decided here and the same call through the gateway get the same answer.
/// </summary>
internal sealed class DecisionRegistry(TimeProvider time)
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromHours(1);
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public sealed class Entry
    {
        public required string Id { get; init; }

        public required string Agent { get; init; }

        public required Permit Permit { get; set; }

        public required DateTimeOffset At { get; init; }

        public string Status { get; set; } = "decided";

        public string? ApprovalId { get; init; }

        public TaskCompletionSource Resolved { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public Entry Add(string agent, Permit permit)
    {
        Sweep();
        var entry = new Entry { Id = "dec_" + Guid.NewGuid().ToString("N")[..20], Agent = agent, Permit = permit, At = time.GetUtcNow(), ApprovalId = permit.ApprovalId };
        _entries[entry.Id] = entry;

        if (permit.Final is { } final)
        {
            // An ask: pending until a human decides; the wait endpoint resolves then.
            entry.Status = "pending";
            _ = final.ContinueWith(
                t =>
                {
                    entry.Permit = t.IsCompletedSuccessfully ? t.Result : new Permit(permit.Decision, forward: false, "denied: the approval could not be completed");
                    entry.Status = "decided";
                    entry.Resolved.TrySetResult();
                },
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
            return entry;
        }

        entry.Resolved.TrySetResult();
        return entry;
    }

    public Entry? Get(string id) => _entries.TryGetValue(id, out var e) ? e : null;

    private void Sweep()
    {
        var cutoff = time.GetUtcNow() - Lifetime;
        foreach (var (id, e) in _entries)
        {
            if (e.At < cutoff)
            {
                _entries.TryRemove(id, out _);
            }
        }
    }
}

/// <summary>The decision API: policy for agents that do not go through the MCP gateway.</summary>
public static class DecisionEndpoints
{
    /// <summary>Maps <c>/api/v1/decide</c>, <c>/api/v1/decisions/...</c> and <c>/api/v1/agents/{name}/events</c>.</summary>
    public static RouteGroupBuilder MapDecisionApi(this RouteGroupBuilder api)
    {
        api.MapPost("/decide", DecideAsync).RequireAuthorization(Roles.Agent)
            .WithSummary("Decide a call an agent wants to make (agent token)");
        api.MapGet("/decisions/{id}", (string id, ClaimsPrincipal user, DecisionRegistry registry) =>
            registry.Get(id) is { } e && Owns(user, e) ? Results.Ok(View(e)) : NotFound(id)).RequireAuthorization()
            .WithSummary("Read a decision");
        api.MapGet("/decisions/{id}/wait", WaitAsync).RequireAuthorization()
            .WithSummary("Wait (long poll) until a decision is final");
        api.MapPost("/decisions/{id}/outcome", OutcomeAsync).RequireAuthorization(Roles.Agent)
            .WithSummary("Record the outcome of a decided call (agent token)");
        api.MapGet("/agents/{name}/events", EventsAsync).RequireAuthorization()
            .WithSummary("Server-sent events for an agent: stops, pauses, resumes");
        return api;
    }

    private static IResult NotFound(string id) => Results.NotFound(new ApiError("not_found", $"no decision '{id}' for this caller"));

    private static bool Owns(ClaimsPrincipal user, DecisionRegistry.Entry e) =>
        user.FindFirstValue(WardenClaims.Kind) == "operator" || (user.FindFirstValue(WardenClaims.Kind) == "agent" && user.FindFirstValue(WardenClaims.Name) == e.Agent);

    private static DecisionView View(DecisionRegistry.Entry e)
    {
        var d = e.Permit.Decision;
        return new DecisionView(e.Id, d.IsError ? "error" : EffectNames.Name(d.Effect), e.Permit.Forward, d.RuleId, e.Permit.Forward ? d.Reason : e.Permit.Message, d.PolicyVersion, e.Status, e.ApprovalId);
    }

    private static async Task<IResult> DecideAsync(DecideRequest request, ClaimsPrincipal user, ICallDecider decider, DecisionRegistry registry, WardenConfig config, TimeProvider time, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.Tool))
        {
            return Results.BadRequest(new ApiError("invalid_request", "tool is required"));
        }

        var operation = request.Method switch
        {
            null or "tools/call" => McpOperation.ToolCall,
            "resources/read" => McpOperation.ResourceRead,
            "prompts/get" => McpOperation.PromptGet,
            _ => (McpOperation?)null,
        };
        if (operation is null)
        {
            return Results.BadRequest(new ApiError("invalid_request", "method must be tools/call, resources/read or prompts/get"));
        }

        string server, target;
        if (request.Server is { Length: > 0 } s)
        {
            (server, target) = (s, request.Tool);
        }
        else
        {
            var i = request.Tool.IndexOf(config.ToolSeparator, StringComparison.Ordinal);
            if (i <= 0)
            {
                return Results.BadRequest(new ApiError("invalid_request", $"tool must be server{config.ToolSeparator}tool, or give server separately"));
            }

            (server, target) = (request.Tool[..i], request.Tool[(i + config.ToolSeparator.Length)..]);
        }

        Dictionary<string, JsonElement>? args = null;
        if (request.Arguments is { ValueKind: not JsonValueKind.Null and not JsonValueKind.Undefined } a)
        {
            if (a.ValueKind != JsonValueKind.Object)
            {
                return Results.BadRequest(new ApiError("invalid_request", "arguments must be a JSON object"));
            }

            args = a.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
        }

        var name = user.FindFirstValue(WardenClaims.Name)!;
        var call = new CallContext
        {
            Agent = new AgentIdentity(name, [.. user.FindAll(WardenClaims.Group).Select(c => c.Value)]),
            SessionId = request.Session is { Length: > 0 } session ? name + "/" + session : name,
            Operation = operation.Value,
            Server = server,
            Target = target,
            Arguments = args,
            AnnotatedClasses = operation == McpOperation.ToolCall
                ? ToolClassifier.FromAnnotations(request.Annotations?.ReadOnlyHint, request.Annotations?.DestructiveHint, request.Annotations?.OpenWorldHint)
                : ToolClasses.ReadOnly,
            ReceivedAt = time.GetUtcNow(),
            Channel = "api",
        };
        var permit = await decider.DecideAsync(call, ct).ConfigureAwait(false);
        return Results.Ok(View(registry.Add(name, permit)));
    }

    private static async Task<IResult> WaitAsync(string id, int? timeoutSeconds, ClaimsPrincipal user, DecisionRegistry registry, CancellationToken ct)
    {
        if (registry.Get(id) is not { } e || !Owns(user, e))
        {
            return NotFound(id);
        }

        try
        {
            await e.Resolved.Task.WaitAsync(TimeSpan.FromSeconds(Math.Clamp(timeoutSeconds ?? 30, 1, 300)), ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Still pending: the caller polls again.
        }

        return Results.Ok(View(e));
    }

    private static async Task<IResult> OutcomeAsync(string id, OutcomeRequest request, ClaimsPrincipal user, DecisionRegistry registry)
    {
        if (registry.Get(id) is not { } e || !Owns(user, e))
        {
            return NotFound(id);
        }

        if (request.Status is not ("completed" or "failed"))
        {
            return Results.BadRequest(new ApiError("invalid_request", "status must be completed or failed"));
        }

        if (!e.Permit.Forward)
        {
            return Results.Conflict(new ApiError("not_allowed", "this call was not allowed; there is no outcome to record"));
        }

        if (e.Status is "completed" or "failed")
        {
            return Results.Conflict(new ApiError("already_recorded", $"the outcome was recorded already ({e.Status})"));
        }

        e.Status = request.Status;
        await e.Permit.CompleteAsync(null, request.Status == "failed" ? new InvalidOperationException(request.Error ?? "failed") : null).ConfigureAwait(false);
        return Results.Ok(View(e));
    }

    private static async Task EventsAsync(string name, HttpContext http, ClaimsPrincipal user, IWardenStore store, CancellationToken ct)
    {
        var kind = user.FindFirstValue(WardenClaims.Kind);
        if (!(kind == "operator" || (kind == "agent" && user.FindFirstValue(WardenClaims.Name) == name)))
        {
            http.Response.StatusCode = StatusCodes.Status403Forbidden;
            await http.Response.WriteAsJsonAsync(new ApiError("forbidden", "an agent may read only its own events"), ApiJsonContext.Default.ApiError, cancellationToken: ct).ConfigureAwait(false);
            return;
        }

        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        await http.Response.WriteAsync(": events for " + name + "\n\n", ct).ConfigureAwait(false);
        await http.Response.Body.FlushAsync(ct).ConfigureAwait(false);
        var after = await store.GetLatestChangeIdAsync(ct).ConfigureAwait(false);
        try
        {
            await foreach (var change in store.WatchAsync(after, ct).ConfigureAwait(false))
            {
                if (change.Topic != ChangeTopics.Stop || change.Payload is null)
                {
                    continue;
                }

                using var payload = JsonDocument.Parse(change.Payload);
                var p = payload.RootElement;
                var scope = p.GetProperty("scope").GetString();
                var target = p.GetProperty("target").GetString();
                if (!(scope == "all" || (scope == "agent" && target == name) || (scope == "session" && target?.StartsWith(name + "/", StringComparison.Ordinal) == true)))
                {
                    continue;
                }

                var ev = new AgentEvent(change.Id, p.GetProperty("event").GetString() ?? "stopped", name, p.GetProperty("reason").GetString(), change.At);
                await http.Response.WriteAsync($"id: {change.Id}\nevent: {ev.Kind}\ndata: {JsonSerializer.Serialize(ev, DecisionJsonContext.Default.AgentEvent)}\n\n", ct).ConfigureAwait(false);
                await http.Response.Body.FlushAsync(ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // The client went away.
        }
    }
}
