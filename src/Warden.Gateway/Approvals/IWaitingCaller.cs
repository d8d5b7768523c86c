namespace Warden.Gateway.Approvals;

/// <summary>
/// The agent's end of a held call, as its transport offers it: progress notifications while it waits, and asking
/// the person at the client to confirm (MCP elicitation). Transports without these pass null.
/// </summary>
internal interface IWaitingCaller
{
    /// <summary>True when the caller sent a progress token.</summary>
    bool CanReportProgress { get; }

    /// <summary>True when the client declared the elicitation capability.</summary>
    bool CanConfirm { get; }

    /// <summary>Sends a progress notification with a message ("waiting for approval by team-leads, 4 min left").</summary>
    ValueTask ReportAsync(double progress, string message, CancellationToken cancellationToken);

    /// <summary>Asks the person at the client; true to allow, false to refuse, null when they dismissed it.</summary>
    ValueTask<bool?> ConfirmAsync(string message, CancellationToken cancellationToken);
}
