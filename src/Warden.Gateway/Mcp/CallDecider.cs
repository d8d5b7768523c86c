using System.Text.Json.Nodes;
using ModelContextProtocol.Protocol;
using Warden.Core;
using Warden.Core.Pipeline;

namespace Warden.Gateway.Mcp;

/// <summary>
/// Decides a call for a transport and tracks it to its outcome. Transports (the MCP endpoint, the decision
/// API) call this and nothing else, so every later stage (audit, stops, approvals) plugs in here once.
/// </summary>
internal interface ICallDecider
{
    /// <summary>Decides a call; the permit says whether to forward it and how to report back.</summary>
    /// <param name="call">The call.</param>
    /// <param name="cancellationToken">Fires when the agent gives up (an approval it waits for is then withdrawn).</param>
    /// <param name="caller">The agent's end while a held call waits (progress, confirmation at the client), if the transport has one.</param>
    ValueTask<Permit> DecideAsync(CallContext call, CancellationToken cancellationToken, Approvals.IWaitingCaller? caller = null);

    /// <summary>
    /// Releases a call decided earlier and approved since: the stop check and the limits apply again at this moment,
    /// and a forwarded call is tracked where a stop can cancel it.
    /// </summary>
    ValueTask<Permit> AdmitAsync(CallContext call, Decision approved, CancellationToken cancellationToken);
}

/// <summary>The answer to one call: forward it or not, and what to tell the agent.</summary>
internal sealed class Permit
{
    private readonly Func<CallToolResult?, Exception?, ValueTask>? _complete;
    private readonly Func<string?>? _cancellationMessage;

    public Permit(Decision decision, bool forward, string message, CancellationToken cancellation = default, IReadOnlyDictionary<string, JsonNode?>? meta = null, Func<CallToolResult?, Exception?, ValueTask>? complete = null, Func<string?>? cancellationMessage = null, Task<Permit>? final = null, string? approvalId = null)
    {
        Final = final;
        ApprovalId = approvalId;
        _cancellationMessage = cancellationMessage;
        Decision = decision;
        Forward = forward;
        Message = message;
        Cancellation = cancellation;
        Meta = meta;
        _complete = complete;
    }

    /// <summary>The decision behind the permit.</summary>
    public Decision Decision { get; }

    /// <summary>True when the call may go to the upstream.</summary>
    public bool Forward { get; }

    /// <summary>What the agent is told when the call is not forwarded.</summary>
    public string Message { get; }

    /// <summary>Fires when Warden must abandon the call in flight (a stop).</summary>
    public CancellationToken Cancellation { get; }

    /// <summary>Why <see cref="Cancellation"/> fired, for the agent.</summary>
    public string? CancellationMessage => _cancellationMessage?.Invoke();

    /// <summary><c>_meta</c> entries to stamp on the forwarded request (for example the audit sequence number).</summary>
    public IReadOnlyDictionary<string, JsonNode?>? Meta { get; }

    /// <summary>For the decision API: the permit once the approval this one waits for is decided; null when final.</summary>
    public Task<Permit>? Final { get; }

    /// <summary>The approval the call waits for, if any.</summary>
    public string? ApprovalId { get; }

    /// <summary>Reports the outcome: a result, or the failure.</summary>
    public ValueTask CompleteAsync(CallToolResult? result, Exception? error) => _complete?.Invoke(result, error) ?? ValueTask.CompletedTask;
}

/// <summary>
/// Decides through the pipeline, holding a pass of the stop barrier from before the stop check until a forwarded
/// call is registered where a stop can cancel it.
/// </summary>
internal sealed partial class PipelineCallDecider(
    DecisionPipeline pipeline,
    Stops.AdmissionGate gate,
    Stops.CallTracker tracker,
    Core.Policy.PolicyHolder policy,
    Core.Limits.LimitCounters limits,
    Stops.StopService stops,
    Stops.DenialLog denials,
    Core.Stops.StopTable stopTable,
    Approvals.ApprovalEvents? events,
    TimeProvider time,
    Microsoft.Extensions.Logging.ILogger<PipelineCallDecider> logger) : ICallDecider
{
    public ValueTask<Permit> DecideAsync(CallContext call, CancellationToken cancellationToken, Approvals.IWaitingCaller? caller = null)
    {
        using var pass = gate.Enter();
        var decision = pipeline.Decide(call);
        IDisposable? release = null;
        if (decision is { Effect: Effect.Allow, IsError: false } && policy.Current is { } current)
        {
            // Limits count only calls that would run: a denied call uses no budget.
            var verdict = limits.Acquire(current.LimitsFor(call), call, out release);
            if (verdict.Exceeded is { } limit)
            {
                decision = LimitDecision(limit, verdict.Message!, call, decision.PolicyVersion);
            }
        }

        var permit = ToPermit(decision);
        if (!permit.Forward && decision.Effect != Effect.Ask)
        {
            denials.Add(call.Agent.Name, new Stops.DenialView(time.GetUtcNow(), call.DisplayName, decision.RuleId, permit.Message));
        }

        return ValueTask.FromResult(Track(call, permit, release));
    }

    public ValueTask<Permit> AdmitAsync(CallContext call, Decision approved, CancellationToken cancellationToken)
    {
        using var pass = gate.Enter();
        if (stopTable.Find(call) is { } stop)
        {
            var stopped = new Decision(Effect.Deny, stop.IsPause ? "pause" : "stop", stop.Message, approved.PolicyVersion);
            return ValueTask.FromResult(Refuse(call, stopped, stopped.AgentMessage));
        }

        IDisposable? release = null;
        if (policy.Current is { } current)
        {
            var verdict = limits.Acquire(current.LimitsFor(call), call, out release);
            if (verdict.Exceeded is { } limit)
            {
                // Approved by a human, yet over a limit now: the limit still holds (an ask from it would loop).
                var over = LimitDecision(limit, verdict.Message!, call, approved.PolicyVersion);
                if (over.Effect == Effect.Ask)
                {
                    over = new Decision(Effect.Deny, limit.Id, verdict.Message, approved.PolicyVersion);
                }

                return ValueTask.FromResult(Refuse(call, over, over.AgentMessage));
            }
        }

        return ValueTask.FromResult(Track(call, new Permit(approved, forward: true, "allowed"), release));
    }

    /// <summary>A refusal outside the pipeline (an approval denied, expired, voided, over the flood cap), noted for status.</summary>
    public Permit Refuse(CallContext call, Decision decision, string message)
    {
        denials.Add(call.Agent.Name, new Stops.DenialView(time.GetUtcNow(), call.DisplayName, decision.RuleId, message));
        return new Permit(decision, forward: false, message);
    }

    private Permit Track(CallContext call, Permit permit, IDisposable? release)
    {
        if (!permit.Forward || call.Channel != "mcp")
        {
            // Calls decided for the decision API run in the agent's own process: Warden cannot cancel them,
            // it tells the agent through its events stream instead.
            release?.Dispose();
            return permit;
        }

        var entry = tracker.Register(call);
        return new Permit(
            permit.Decision,
            forward: true,
            permit.Message,
            entry.Cancellation.Token,
            complete: (_, _) =>
            {
                release?.Dispose();
                entry.Dispose();
                return ValueTask.CompletedTask;
            },
            cancellationMessage: () => entry.CancelledBecause);
    }

    private Decision LimitDecision(Core.Limits.LimitRule limit, string message, CallContext call, string version)
    {
        switch (limit.OnExceed)
        {
            case Core.Limits.ExceedAction.Ask:
                return new Decision(Effect.Ask, limit.Id, message, version);
            case Core.Limits.ExceedAction.PauseAgent:
                // The pause lands in the stop table at once (before this call's pass is returned), so the
                // agent's next call is refused; its record and the cancellation of calls in flight follow.
                var pause = stops.StopAsync(Core.Stops.StopScope.Agent, call.Agent.Name, "breaker:" + limit.Id, message, pause: true);
                events?.BreakerTripped(call.Agent.Name, limit.Id, message);
                _ = pause.ContinueWith(t => LogPauseFailed(logger, call.Agent.Name, t.Exception?.GetBaseException().Message ?? ""), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                return new Decision(Effect.Deny, limit.Id, $"paused: {message}; an operator must resume the agent", version);
            default:
                return new Decision(Effect.Deny, limit.Id, message, version);
        }
    }

    [Microsoft.Extensions.Logging.LoggerMessage(Level = Microsoft.Extensions.Logging.LogLevel.Error, Message = "Pausing agent {Agent} failed: {Error}")]
    private static partial void LogPauseFailed(Microsoft.Extensions.Logging.ILogger logger, string agent, string error);

    /// <summary>
    /// Only allow forwards. An ask is not forwarded here: the approvals layer above holds it for a human. Shadow has
    /// no implementation yet, so it denies rather than forwards: a simulated call must never run for real.
    /// </summary>
    internal static Permit ToPermit(Decision decision) => decision.Effect switch
    {
        Effect.Allow when !decision.IsError => new Permit(decision, forward: true, "allowed"),
        Effect.Shadow when !decision.IsError =>
            new Permit(decision, forward: false, $"denied: rule {decision.RuleId} asks for simulation, effect not yet available"),
        _ => new Permit(decision, forward: false, decision.AgentMessage),
    };
}
