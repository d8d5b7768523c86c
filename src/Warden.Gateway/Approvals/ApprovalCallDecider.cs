using Warden.Core;
using Warden.Core.Pipeline;
using Warden.Gateway.Mcp;

namespace Warden.Gateway.Approvals;

/// <summary>
/// Turns <c>ask</c> decisions into approvals. The layers below decide and record the decision; an ask waits for a
/// human here (or is answered at once in defer mode), and an approved call goes back down through
/// <see cref="ICallDecider.AdmitAsync"/>, where the stop check and the limits apply again at the moment of release
/// and the audit records the intent, so a stop issued while it waited still holds.
/// </summary>
internal sealed class ApprovalCallDecider(ICallDecider inner, PipelineCallDecider pipeline, ApprovalService approvals, ApprovalEvents events) : ICallDecider
{
    public async ValueTask<Permit> DecideAsync(CallContext call, CancellationToken cancellationToken, IWaitingCaller? caller = null)
    {
        var permit = await inner.DecideAsync(call, cancellationToken, caller).ConfigureAwait(false);
        if (permit.Decision is not { Effect: Effect.Ask, IsError: false } asked || permit.Forward)
        {
            return permit;
        }

        if (call.Channel != "mcp")
        {
            return await DecideForApiAsync(call, asked).ConfigureAwait(false);
        }

        var outcome = await approvals.RequestAsync(call, asked, caller, cancellationToken).ConfigureAwait(false);
        return await ToPermitAsync(call, asked, outcome, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask<Permit> AdmitAsync(CallContext call, Decision approved, CancellationToken cancellationToken) =>
        inner.AdmitAsync(call, approved, cancellationToken);

    private async ValueTask<Permit> ToPermitAsync(CallContext call, Decision asked, ApprovalOutcome outcome, CancellationToken cancellationToken)
    {
        if (outcome.Refusal is { } refusal)
        {
            events.Refused(call, refusal);
            return pipeline.Refuse(call, refusal, outcome.Message);
        }

        if (!outcome.Run)
        {
            return outcome.Approval is { State: Core.Approvals.ApprovalState.Pending }
                ? new Permit(asked, forward: false, outcome.Message, approvalId: outcome.Approval.Id)
                : pipeline.Refuse(call, asked, outcome.Message);
        }

        var by = outcome.Approval is { } a ? $"approved by {string.Join(" and ", a.Approvals.Select(s => s.By))} (approval {a.Id})" : "approved earlier (remembered)";
        return await inner.AdmitAsync(call, asked with { Reason = by }, cancellationToken).ConfigureAwait(false);
    }

    // The decision API answers at once with the approval's id; its wait endpoint resolves when a human decides.
    private async Task<Permit> DecideForApiAsync(CallContext call, Decision asked)
    {
        var created = new TaskCompletionSource<Core.Approvals.ApprovalRecord>(TaskCreationOptions.RunContinuationsAsynchronously);
        var final = Task.Run(async () =>
        {
            var outcome = await approvals.RequestAsync(call, asked, null, CancellationToken.None, r => created.TrySetResult(r)).ConfigureAwait(false);
            return await ToPermitAsync(call, asked, outcome, CancellationToken.None).ConfigureAwait(false);
        }, CancellationToken.None);
        var first = await Task.WhenAny(created.Task, final).ConfigureAwait(false);
        if (first == final)
        {
            return await final.ConfigureAwait(false);
        }

        var record = await created.Task.ConfigureAwait(false);
        return new Permit(asked, forward: false, $"pending approval {record.Id} by an approver; wait for the decision", final: final, approvalId: record.Id);
    }
}
