using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using Warden.Core.Audit;
using Warden.Core.Pipeline;
using Warden.Core.Policy;
using Warden.Gateway.Approvals;
using Warden.Gateway.Mcp;

namespace Warden.Gateway.Audit;

/// <summary>
/// Records every call around the decider it wraps: the decision (with its context and the masked arguments),
/// the intent to forward, durable before the permit says forward, and the outcome.
/// </summary>
/// <remarks>
/// The intent is awaited for at most <c>audit.write_timeout</c>. If it cannot be made durable in time (the store
/// is unwritable, gone, locked, or the disk stalls), the call is refused with a message saying so, and a
/// <c>call.cancelled</c> (<c>not_forwarded</c>) follows the intent in the log should the intent be written later.
/// With <c>audit.on_failure: allow</c> the call goes on and an <c>audit.gap</c> event counts such calls once the
/// store writes again. The forwarded request carries the intent's sequence number as <c>_meta["warden/seq"]</c>,
/// so an upstream's own log can be matched with the audit.
/// </remarks>
internal sealed class AuditingCallDecider(ICallDecider inner, AuditLog audit) : ICallDecider
{
    public async ValueTask<Permit> DecideAsync(CallContext call, CancellationToken cancellationToken, IWaitingCaller? caller = null)
    {
        var permit = await inner.DecideAsync(call, cancellationToken, caller).ConfigureAwait(false);
        return await RecordAsync(call, permit, decided: true, cancellationToken).ConfigureAwait(false);
    }

    // A call released after approval: its decision (ask) is recorded already; what is recorded now is the intent,
    // or the refusal if a stop or a limit holds it back at the moment of release.
    public async ValueTask<Permit> AdmitAsync(CallContext call, Decision approved, CancellationToken cancellationToken)
    {
        var permit = await inner.AdmitAsync(call, approved, cancellationToken).ConfigureAwait(false);
        return await RecordAsync(call, permit, decided: !permit.Forward, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<Permit> RecordAsync(CallContext call, Permit permit, bool decided, CancellationToken cancellationToken)
    {
        var d = permit.Decision;
        var callId = AuditLog.NewCallId();
        var actor = "agent:" + call.Agent.Name;
        var effect = d.IsError ? "error" : EffectNames.Name(d.Effect);

        // The call as both the decision and the intent name it; the decision adds its context and arguments.
        var subject = new AuditEvent
        {
            Kind = AuditKinds.CallForwarded,
            Actor = actor,
            Agent = call.Agent.Name,
            Session = call.SessionId,
            Call = callId,
            Server = call.Server,
            Tool = call.Target,
            Effect = effect,
            Rule = d.RuleId,
            PolicyVersion = d.PolicyVersion,
        };
        if (decided)
        {
            // Built on the writer's thread: the decision path pays for a closure and a queue write, not for
            // serializing and masking the arguments. CallContext and the decision are immutable by then.
            var received = call.ReceivedAt == default ? audit.Time.GetUtcNow() : call.ReceivedAt;
            audit.Record(() => subject with
            {
                Time = received,
                Kind = AuditKinds.Decision,
                Context = AuditLog.DecisionContext(call),
                // What the data guard found never reaches the record in the clear: those values are redacted first.
                Arguments = audit.Digester.MaskArguments(call.Findings is { Count: > 0 } found && call.Arguments is { } args
                    ? Core.DataGuard.DataGuardStage.RedactArguments(args, found)
                    : call.Arguments),
                Detail = AuditLog.Json(w =>
                {
                    w.WriteBoolean("forward", permit.Forward);
                    if (d.Reason is { } reason)
                    {
                        w.WriteString("reason", reason);
                    }

                    if (!permit.Forward && d.Effect != Core.Effect.Deny)
                    {
                        // An ask that waits, a refusal by approvals: what the agent was told.
                        w.WriteString("message", permit.Message);
                    }

                    DataGuard.ResultGuard.WriteFindings(w, "findings", call.Findings);
                    if (call.ForwardArguments is not null)
                    {
                        w.WriteBoolean("redacted", true);
                    }
                }),
            });
        }

        if (!permit.Forward)
        {
            // Nothing leaves: the decision is queued and not awaited.
            return permit;
        }

        var intent = audit.Commit(subject);

        long? seq = null;
        try
        {
            seq = (await intent.Durable.WaitAsync(audit.WriteTimeout, audit.Time, cancellationToken).ConfigureAwait(false)).Seq;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Outcome(call, callId, AuditKinds.CallCancelled, "not_forwarded", "the agent cancelled the call before its intent was durable");
            // Hands back what the inner decider holds for a forwarded call (a limit's slot, a stop tracker entry).
            await permit.CompleteAsync(null, new OperationCanceledException("not forwarded: cancelled by the agent")).ConfigureAwait(false);
            throw;
        }
        catch (Exception ex)
        {
            // The agent learns that the audit is down, not where it lives or why: details go to the log.
            var why = ex is TimeoutException
                ? $"the audit store did not confirm the record within {audit.WriteTimeout.TotalSeconds:0.###} s"
                : "the audit store cannot write";
            if (!audit.AllowOnFailure)
            {
                audit.LogRefusal(call.DisplayName, ex.Message);
                Outcome(call, callId, AuditKinds.CallCancelled, "not_forwarded", "refused: the intent record was not durable in time: " + why);
                // The inner decider may hold resources for a forwarded call (a limit's slot, a stop tracker entry).
                await permit.CompleteAsync(null, new OperationCanceledException("not forwarded: " + why)).ConfigureAwait(false);
                return new Permit(d, forward: false, $"refused: Warden could not record this call in its audit log ({why}); calls are refused until the audit store accepts records again");
            }

            audit.NoteUnrecorded();
        }

        var meta = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        if (permit.Meta is { } extra)
        {
            foreach (var (k, v) in extra)
            {
                meta[k] = v;
            }
        }

        if (seq is { } s)
        {
            meta["warden/seq"] = JsonValue.Create(s);
        }

        var started = Stopwatch.GetTimestamp();
        return new Permit(d, forward: true, permit.Message, permit.Cancellation, meta, cancellationMessage: () => permit.CancellationMessage, complete: async (result, error) =>
        {
            var micros = (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds;
            string kind, outcome;
            string? detail = null;
            if (error is OperationCanceledException)
            {
                (kind, outcome) = (AuditKinds.CallCancelled, "cancelled");
                detail = permit.Cancellation.IsCancellationRequested ? permit.CancellationMessage ?? "cancelled by Warden" : "cancelled";
            }
            else if (error is not null)
            {
                (kind, outcome) = (AuditKinds.CallFailed, "error");
                detail = error.Message;
            }
            else if (result?.IsError == true)
            {
                (kind, outcome) = (AuditKinds.CallFailed, "tool_error");
            }
            else
            {
                (kind, outcome) = (AuditKinds.CallCompleted, "ok");
            }

            audit.Record(new AuditEvent
            {
                Kind = kind,
                Actor = actor,
                Agent = call.Agent.Name,
                Session = call.SessionId,
                Call = callId,
                Server = call.Server,
                Tool = call.Target,
                Outcome = outcome,
                DurationMicros = micros,
                ResultDigest = result is null ? null : audit.Digester.Digest(JsonSerializer.SerializeToUtf8Bytes(result, McpJsonUtilities.DefaultOptions.GetTypeInfo(typeof(CallToolResult)))),
                Detail = detail is null && call.ResultFindings is not { Count: > 0 } ? null : AuditLog.Json(w =>
                {
                    if (detail is not null)
                    {
                        w.WriteString("message", MaskText(detail));
                    }

                    DataGuard.ResultGuard.WriteFindings(w, "findings", call.ResultFindings);
                }),
            });
            await permit.CompleteAsync(result, error).ConfigureAwait(false);
        });
    }

    private string MaskText(string text)
    {
        var clipped = text.Length > 500 ? text[..500] : text;
        return AuditDigester.LooksSecret(clipped) ? audit.Digester.Digest(clipped) : clipped;
    }

    private void Outcome(CallContext call, string callId, string kind, string outcome, string message) => audit.Record(new AuditEvent
    {
        Kind = kind,
        Actor = "warden",
        Agent = call.Agent.Name,
        Session = call.SessionId,
        Call = callId,
        Server = call.Server,
        Tool = call.Target,
        Outcome = outcome,
        Detail = AuditLog.Json(w => w.WriteString("message", message)),
    });
}
