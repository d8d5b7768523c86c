using System.Text.Json;
using Warden.Core.Approvals;
using Warden.Core.Audit;
using Warden.Core.Pipeline;
using Warden.Gateway.Audit;
using Warden.Gateway.Webhooks;

namespace Warden.Gateway.Approvals;

/// <summary>Records every step of an approval in the audit log and tells webhook receivers.</summary>
internal sealed class ApprovalEvents(AuditLog audit, WebhookDispatcher webhooks)
{
    public void Requested(ApprovalRecord a)
    {
        Record(a, "approval.requested", "agent:" + a.Agent, w =>
        {
            w.WriteString("mode", ApprovalNames.Name(a.Mode));
            w.WriteString("expires_at", a.ExpiresAt);
            w.WriteString("digest", a.Digest);
            WriteGroups(w, a);
        });
        webhooks.Publish(Message("approval.requested", a,
            $"Approval needed: {a.Agent} wants to call {a.DisplayName} (rule {a.Rule}{(a.Reason is null ? "" : ": " + a.Reason)}). Approval {a.Id}, expires {a.ExpiresAt:u}. `warden approvals show {a.Id}`"));
    }

    public void Decided(ApprovalRecord a, string by, ApprovalVerdict verdict)
    {
        if (a.State == ApprovalState.Pending)
        {
            // The first of two under the two-person rule.
            Record(a, "approval.partial", "approver:" + by, w => w.WriteString("by", by));
            return;
        }

        var kind = verdict == ApprovalVerdict.Approve ? "approval.granted" : "approval.denied";
        Record(a, kind, "approver:" + by, w =>
        {
            w.WriteString("by", by);
            if (a.DecisionReason is { } r)
            {
                w.WriteString("reason", r);
            }

            if (a.RememberUntil is { } until)
            {
                w.WriteString("remember_id", a.RememberId);
                w.WriteString("remember_until", until);
            }

            w.WriteStartArray("approvers");
            foreach (var s in a.Approvals)
            {
                w.WriteStringValue(s.By);
            }

            w.WriteEndArray();
        });
        webhooks.Publish(Message("approval.decided", a, $"Approval {a.Id} ({a.Agent} → {a.DisplayName}) {(verdict == ApprovalVerdict.Approve ? "approved" : "denied")} by {by}{(a.DecisionReason is null ? "" : ": " + a.DecisionReason)}"));
    }

    /// <summary>A change Warden made (timeout, stop, withdrawal, restart) or the client's user decided.</summary>
    public void Ended(ApprovalRecord a)
    {
        var kind = a.State switch
        {
            ApprovalState.Approved => "approval.granted",
            ApprovalState.Denied => "approval.denied",
            _ => "approval." + ApprovalNames.Name(a.State),
        };
        Record(a, kind, a.DecidedBy == ApprovalRules.ClientUser ? "client:" + a.Agent : "warden", w =>
        {
            w.WriteString("by", a.DecidedBy);
            if (a.DecisionReason is { } r)
            {
                w.WriteString("reason", r);
            }
        });
        if (a.State != ApprovalState.Executed)
        {
            webhooks.Publish(Message("approval.decided", a, $"Approval {a.Id} ({a.Agent} → {a.DisplayName}) {ApprovalNames.Name(a.State)}{(a.DecisionReason is null ? "" : ": " + a.DecisionReason)}"));
        }
    }

    /// <summary>Approvals refused a call outright (flood control, nobody allowed to approve).</summary>
    public void Refused(CallContext call, Decision refusal) => audit.Record(new AuditEvent
    {
        Kind = "approval.refused",
        Actor = "warden",
        Agent = call.Agent.Name,
        Session = call.SessionId,
        Server = call.Server,
        Tool = call.Target,
        Effect = "deny",
        Rule = refusal.RuleId,
        PolicyVersion = refusal.PolicyVersion,
        Detail = AuditLog.Json(w => w.WriteString("reason", refusal.Reason)),
    });

    public void Executed(ApprovalRecord a) => Record(a, "approval.executed", "warden", w => w.WriteString("digest", a.Digest));

    public void Remembered(CallContext call, Decision decision, RememberedGrant grant) => audit.Record(new AuditEvent
    {
        Kind = "approval.remembered",
        Actor = "approver:" + grant.By,
        Agent = call.Agent.Name,
        Session = call.SessionId,
        Server = call.Server,
        Tool = call.Target,
        Rule = decision.RuleId,
        PolicyVersion = decision.PolicyVersion,
        Detail = AuditLog.Json(w =>
        {
            w.WriteString("grant", grant.Id);
            w.WriteString("approval", grant.ApprovalId);
            w.WriteString("until", grant.Until);
        }),
    });

    public void GrantRevoked(string id, string by) => audit.Record(new AuditEvent
    {
        Kind = "approval.grant_revoked",
        Actor = "person:" + by,
        Detail = AuditLog.Json(w => w.WriteString("grant", id)),
    });

    /// <summary>A breaker paused an agent.</summary>
    public void BreakerTripped(string agent, string limit, string message) =>
        webhooks.Publish(new WebhookMessage("breaker.tripped",
            JsonBody("breaker.tripped", w =>
            {
                w.WriteString("agent", agent);
                w.WriteString("limit", limit);
                w.WriteString("message", message);
            }),
            $"Breaker {limit} paused agent {agent}: {message}. An operator must resume it: `warden resume --agent {agent} --reason ...`"));

    private void Record(ApprovalRecord a, string kind, string actor, Action<Utf8JsonWriter> detail) => audit.Record(new AuditEvent
    {
        Kind = kind,
        Actor = actor,
        Agent = a.Agent,
        Session = a.Session,
        Server = a.Server,
        Tool = a.Tool,
        Rule = a.Rule,
        PolicyVersion = a.PolicyVersion,
        Detail = AuditLog.Json(w =>
        {
            w.WriteString("approval", a.Id);
            w.WriteString("state", ApprovalNames.Name(a.State));
            detail(w);
        }),
    });

    private static void WriteGroups(Utf8JsonWriter w, ApprovalRecord a)
    {
        w.WriteStartArray("approver_groups");
        foreach (var g in a.ApproverGroups)
        {
            w.WriteStringValue(g);
        }

        w.WriteEndArray();
        w.WriteBoolean("two_person", a.TwoPerson);
    }

    private static WebhookMessage Message(string @event, ApprovalRecord a, string text) => new(@event, JsonBody(@event, w =>
    {
        // Arguments stay out of webhook payloads (chat rooms keep them forever); the digest identifies the call.
        w.WriteStartObject("approval");
        w.WriteString("id", a.Id);
        w.WriteString("state", ApprovalNames.Name(a.State));
        w.WriteString("mode", ApprovalNames.Name(a.Mode));
        w.WriteString("agent", a.Agent);
        w.WriteString("session", a.Session);
        w.WriteString("server", a.Server);
        w.WriteString("tool", a.Tool);
        w.WriteString("display_name", a.DisplayName);
        w.WriteString("rule", a.Rule);
        w.WriteString("reason", a.Reason);
        w.WriteString("digest", a.Digest);
        WriteGroups(w, a);
        w.WriteString("created_at", a.CreatedAt);
        w.WriteString("expires_at", a.ExpiresAt);
        if (a.DecidedBy is { } by)
        {
            w.WriteString("decided_by", by);
            w.WriteString("decision_reason", a.DecisionReason);
        }

        w.WriteEndObject();
    }), text);

    private static string JsonBody(string @event, Action<Utf8JsonWriter> body) => AuditLog.Json(w =>
    {
        w.WriteString("event", @event);
        w.WriteString("at", DateTimeOffset.UtcNow);
        body(w);
    });
}
