using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Warden.Core;
using Warden.Core.Approvals;
using Warden.Core.Pipeline;
using Warden.Core.Policy;
using Warden.Core.Stops;
using Warden.Core.Storage;

namespace Warden.Gateway.Approvals;

/// <summary>What became of an asked call.</summary>
/// <param name="Run">True when the call may run now (approved, or covered by a remembered grant).</param>
/// <param name="Message">What the agent is told when it does not run.</param>
/// <param name="Approval">The approval involved, if one was made.</param>
/// <param name="Refusal">A decision replacing the ask when Warden refused outright (flood control, no approvers).</param>
internal sealed record ApprovalOutcome(bool Run, string Message, ApprovalRecord? Approval, Decision? Refusal = null);

/// <summary>
/// Human approval: turns an <c>ask</c> into a pending approval in the store, waits for it (hold) or answers at once
/// and runs the identical retry (defer), and applies approvers' decisions. Every state change is a compare-and-set in
/// the store, so an approval decides once and an approved call is released once, whatever the number of approvers,
/// connections or gateway processes.
/// </summary>
internal sealed partial class ApprovalService : IAsyncDisposable
{
    private readonly IWardenStore _store;
    private readonly PolicyHolder _policy;
    private readonly StopTable _stops;
    private readonly TimeProvider _time;
    private readonly ApprovalOptions _options;
    private readonly ApprovalEvents _events;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Waiter> _waiters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _ownerSeen = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private volatile IReadOnlyList<RememberedGrant> _grants = [];
    private Task? _sweeper;
    private int _disposed;

    public ApprovalService(IWardenStore store, PolicyHolder policy, StopTable stops, TimeProvider time, ApprovalOptions options, ApprovalEvents events, ILoggerFactory loggerFactory)
    {
        _store = store;
        _policy = policy;
        _stops = stops;
        _time = time;
        _options = options;
        _events = events;
        _logger = loggerFactory.CreateLogger("Warden.Approvals");
        Instance = "gw_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
    }

    /// <summary>This process's id, written on the approvals whose callers it holds.</summary>
    public string Instance { get; }

    /// <summary>The options in force.</summary>
    public ApprovalOptions Options => _options;

    /// <summary>Fires on every approval change this process makes or learns of (for the dashboard's stream).</summary>
    public event Action<ApprovalRecord>? Changed;

    /// <summary>Loads grants, abandons callers lost in a restart, and starts the sweeper.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await HeartbeatAsync(cancellationToken).ConfigureAwait(false);
        await RefreshGrantsAsync(cancellationToken).ConfigureAwait(false);
        await SweepAsync(cancellationToken).ConfigureAwait(false);
        _sweeper = Task.Run(() => SweepLoopAsync(_stopping.Token), CancellationToken.None);
    }

    // ---- Asking ---------------------------------------------------------------------------------------------

    /// <summary>Handles a call a rule (or a limit, or the data guard) asked a human about.</summary>
    public async Task<ApprovalOutcome> RequestAsync(CallContext call, Decision decision, IWaitingCaller? caller, CancellationToken cancellationToken, Action<ApprovalRecord>? onPending = null)
    {
        var now = _time.GetUtcNow();
        var arguments = ApprovalDigest.CanonicalArguments(call.Arguments);
        var pattern = ApprovalDigest.Pattern(call.Server, call.Target, arguments);
        var digest = ApprovalDigest.Digest(call.Server, call.Target, arguments, decision.PolicyVersion);
        var rule = _policy.Current?.Rules.FirstOrDefault(r => r.Id == decision.RuleId)?.Entry;
        var agentEntry = _policy.Current?.Document.Agents.GetValueOrDefault(call.Agent.Name);

        if (_grants.FirstOrDefault(g => g.IsActive(now) && g.Agent == call.Agent.Name && g.PatternDigest == pattern) is { } grant)
        {
            _events.Remembered(call, decision, grant);
            return new ApprovalOutcome(true, "allowed by a remembered approval", null);
        }

        var mode = rule?.Mode switch
        {
            AskMode.Defer => ApprovalMode.Defer,
            AskMode.Hold => ApprovalMode.Hold,
            _ => _options.DefaultMode,
        };
        var groups = rule?.Approvers ?? [];
        var clientOnly = groups.Count > 0 && groups.All(g => g == ApprovalRules.ClientUserGroup);
        var clientMay = groups.Contains(ApprovalRules.ClientUserGroup) && agentEntry?.TrustClientConfirmation == true
            && (call.Classes & (ToolClasses.Destructive | ToolClasses.Outbound)) == 0;
        if (clientOnly && !clientMay)
        {
            // Only the person at the client may confirm, and here they may not: nobody can approve, so deny now.
            var why = agentEntry?.TrustClientConfirmation != true
                ? $"rule {decision.RuleId} asks the client's user, and agent '{call.Agent.Name}' does not have trust_client_confirmation"
                : $"rule {decision.RuleId} asks the client's user, which never applies to destructive or outbound calls";
            return new ApprovalOutcome(false, "denied: " + why, null, new Decision(Effect.Deny, decision.RuleId, why, decision.PolicyVersion));
        }

        if (mode == ApprovalMode.Defer && call.Channel == "mcp")
        {
            var earlier = await _store.ListApprovalsAsync(new ApprovalQuery { Agent = call.Agent.Name, Digest = digest, Limit = 20 }, cancellationToken).ConfigureAwait(false);
            if (await RetryAsync(earlier, now, cancellationToken).ConfigureAwait(false) is { } answer)
            {
                return answer;
            }
        }

        var pending = await _store.ListApprovalsAsync(new ApprovalQuery { Agent = call.Agent.Name, State = ApprovalState.Pending, Limit = _options.MaxPendingPerAgent + 1 }, cancellationToken).ConfigureAwait(false);
        if (pending.Count(p => p.ExpiresAt > now) >= _options.MaxPendingPerAgent)
        {
            var why = $"agent '{call.Agent.Name}' already has {_options.MaxPendingPerAgent} calls waiting for approval; decide or let them expire first";
            return new ApprovalOutcome(false, "denied: " + why, null, new Decision(Effect.Deny, "approvals.flood", why, decision.PolicyVersion));
        }

        var timeout = rule?.Timeout ?? _options.DefaultTimeout;
        var record = new ApprovalRecord
        {
            Id = "apr_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12)),
            Mode = mode,
            Agent = call.Agent.Name,
            Session = call.SessionId,
            Server = call.Server,
            Tool = call.Target,
            DisplayName = call.DisplayName,
            ArgumentsJson = arguments,
            Digest = digest,
            PatternDigest = pattern,
            Rule = decision.RuleId,
            Reason = decision.Reason,
            PolicyVersion = decision.PolicyVersion,
            ApproverGroups = groups,
            TwoPerson = rule?.TwoPerson ?? false,
            Findings = call.Findings is { Count: > 0 } found ? [.. found.Select(f => new ApprovalFinding(f.Kind, f.Location, f.Confidence))] : [],
                        CreatedAt = now,
            ExpiresAt = now + timeout,
            Owner = mode == ApprovalMode.Hold || call.Channel != "mcp" ? Instance : "",
        };

        // Registered before the record exists, so a decision made the instant it is visible finds the waiter.
        var waiter = new Waiter(record);
        var holds = mode == ApprovalMode.Hold || call.Channel != "mcp";
        if (holds)
        {
            _waiters[record.Id] = waiter;
        }

        try
        {
            await _store.AddApprovalAsync(record, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            _waiters.TryRemove(record.Id, out _);
            throw;
        }

        _events.Requested(record);
        Changed?.Invoke(record);
        onPending?.Invoke(record);
        if (!holds)
        {
            return new ApprovalOutcome(false, $"pending approval {record.Id} by {Who(record)} (rule {record.Rule}); retry the same call with the same arguments after approval, within {Minutes(timeout)}", record);
        }

        try
        {
            return await HoldAsync(record, waiter, caller, clientMay, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _waiters.TryRemove(record.Id, out _);
        }
    }

    // An identical retry in defer mode: run what was approved (once), report what was decided, or point at the
    // approval still pending. Null when there is nothing to go on and a new approval is needed.
    private async Task<ApprovalOutcome?> RetryAsync(IReadOnlyList<ApprovalRecord> earlier, DateTimeOffset now, CancellationToken cancellationToken)
    {
        foreach (var found in earlier)
        {
            var a = found;
            while (true)
            {
                if (a.State == ApprovalState.Approved && now < a.ExpiresAt)
                {
                    var executed = ApprovalRules.Execute(a);
                    if (await _store.UpdateApprovalAsync(executed, a.Revision, cancellationToken).ConfigureAwait(false))
                    {
                        _events.Executed(executed);
                        Changed?.Invoke(executed);
                        return new ApprovalOutcome(true, "approved", executed);
                    }

                    // Another retry of the same call took it first: re-read and report what it is now.
                    a = await _store.GetApprovalAsync(a.Id, cancellationToken).ConfigureAwait(false) ?? a;
                    continue;
                }

                if (a.State == ApprovalState.Pending && now < a.ExpiresAt)
                {
                    return new ApprovalOutcome(false, $"still pending approval {a.Id} by {Who(a)} (rule {a.Rule}); retry the same call after approval, within {Minutes(a.ExpiresAt - now)}", a);
                }

                if (a.State is ApprovalState.Denied or ApprovalState.Voided or ApprovalState.Expired && !a.Delivered)
                {
                    // Told once: a later retry asks again, so an agent is never locked out by an old denial.
                    if (!await _store.UpdateApprovalAsync(a with { Delivered = true, Revision = a.Revision + 1 }, a.Revision, cancellationToken).ConfigureAwait(false))
                    {
                        a = await _store.GetApprovalAsync(a.Id, cancellationToken).ConfigureAwait(false) ?? a;
                        continue;
                    }

                    return new ApprovalOutcome(false, Refusal(a), a);
                }

                break;
            }
        }

        return null;
    }

    private async Task<ApprovalOutcome> HoldAsync(ApprovalRecord record, Waiter waiter, IWaitingCaller? caller, bool clientMay, CancellationToken cancellationToken)
    {
        using var confirm = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (clientMay && caller is { CanConfirm: true })
        {
            _ = ConfirmAtClientAsync(record, caller, confirm.Token);
        }

        var progress = 0;
        while (true)
        {
            var left = record.ExpiresAt - _time.GetUtcNow();
            if (left <= TimeSpan.Zero)
            {
                var ended = await EndAsync(record.Id, ApprovalState.Expired, $"no decision within {Minutes(record.ExpiresAt - record.CreatedAt)}", CancellationToken.None).ConfigureAwait(false);
                if (ended is { State: ApprovalState.Approved })
                {
                    return await ReleaseAsync(ended).ConfigureAwait(false);
                }

                return new ApprovalOutcome(false, Refusal(ended ?? record), ended ?? record);
            }

            if (caller is { CanReportProgress: true })
            {
                try
                {
                    await caller.ReportAsync(++progress, $"waiting for approval {record.Id} by {Who(record)}, {Minutes(left)} left", cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogProgressFailed(_logger, record.Id, ex.Message);
                }
            }

            ApprovalRecord decided;
            try
            {
                var wait = left < _options.ProgressInterval ? left : _options.ProgressInterval;
                decided = await waiter.Decided.Task.WaitAsync(wait, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                continue;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // The caller gave up: the approval is withdrawn, unless it was decided in the same instant.
                // EndAsync also withdraws an approval granted in that instant but not yet released.
                await EndAsync(record.Id, ApprovalState.Withdrawn, "the agent cancelled or disconnected while waiting", CancellationToken.None).ConfigureAwait(false);
                throw;
            }

            await confirm.CancelAsync().ConfigureAwait(false);
            return decided.State == ApprovalState.Approved
                ? await ReleaseAsync(decided).ConfigureAwait(false)
                : new ApprovalOutcome(false, Refusal(decided), decided);
        }
    }

    // The approved call leaves once: whoever moves it from approved to executed releases it.
    private async Task<ApprovalOutcome> ReleaseAsync(ApprovalRecord approved)
    {
        var current = approved;
        while (current.State == ApprovalState.Approved)
        {
            var executed = ApprovalRules.Execute(current);
            if (await _store.UpdateApprovalAsync(executed, current.Revision, CancellationToken.None).ConfigureAwait(false))
            {
                _events.Executed(executed);
                Changed?.Invoke(executed);
                return new ApprovalOutcome(true, "approved", executed);
            }

            current = await _store.GetApprovalAsync(current.Id, CancellationToken.None).ConfigureAwait(false) ?? current with { State = ApprovalState.Executed };
        }

        return new ApprovalOutcome(false, Refusal(current), current);
    }

    private async Task ConfirmAtClientAsync(ApprovalRecord record, IWaitingCaller caller, CancellationToken cancellationToken)
    {
        try
        {
            var answer = await caller.ConfirmAsync($"Allow {record.DisplayName} with these arguments?\n{record.ArgumentsJson}\n(rule {record.Rule}: {record.Reason})", cancellationToken).ConfigureAwait(false);
            if (answer is not { } allow)
            {
                return;
            }

            await ApplyAsync(record.Id, current => current.State != ApprovalState.Pending ? null : current with
            {
                State = allow ? ApprovalState.Approved : ApprovalState.Denied,
                Revision = current.Revision + 1,
                DecidedBy = ApprovalRules.ClientUser,
                DecidedAt = _time.GetUtcNow(),
                DecisionReason = allow ? null : "the user at the client refused",
                Approvals = allow ? [new ApprovalSignature(ApprovalRules.ClientUser, _time.GetUtcNow())] : current.Approvals,
            }, CancellationToken.None).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Decided elsewhere first, or the caller left.
        }
        catch (Exception ex)
        {
            LogConfirmFailed(_logger, record.Id, ex.Message);
        }
    }

    // ---- Deciding -------------------------------------------------------------------------------------------

    /// <summary>An approver's decision, from any interface.</summary>
    public async Task<ApprovalChange> DecideAsync(string id, Decider decider, ApprovalVerdict verdict, string? digest, string? reason, TimeSpan? rememberFor, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 16; attempt++)
        {
            // A call this process holds: its latest record is known here, and if it is stale the compare-and-set
            // below fails and the next attempt reads the store.
            var current = attempt == 0 && _waiters.TryGetValue(id, out var held)
                ? held.Latest
                : await _store.GetApprovalAsync(id, cancellationToken).ConfigureAwait(false);
            if (current is null)
            {
                return new ApprovalChange(null, $"no approval '{id}'", 404);
            }

            var now = _time.GetUtcNow();
            if (current.State == ApprovalState.Pending && StopCovering(current) is { } stop && decider.Kind == "approver")
            {
                // A stop voids what waits in its scope; approving afterwards does nothing.
                await EndAsync(id, ApprovalState.Voided, "voided: " + stop.Message, cancellationToken).ConfigureAwait(false);
                return new ApprovalChange(null, $"approval {id} was voided by a stop: {stop.Message}", 409);
            }

            if (current.State == ApprovalState.Pending && now >= current.ExpiresAt)
            {
                await EndAsync(id, ApprovalState.Expired, $"no decision within {Minutes(current.ExpiresAt - current.CreatedAt)}", cancellationToken).ConfigureAwait(false);
            }

            var change = ApprovalRules.Decide(current, decider, verdict, digest, reason, rememberFor, now, () => "rem_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12)));
            if (change.Updated is not { } updated)
            {
                return change;
            }

            if (updated.State == ApprovalState.Approved && updated.Mode == ApprovalMode.Defer)
            {
                // The agent retries: it has the rest of the window it was promised, at least a minute.
                var window = current.ExpiresAt - current.CreatedAt;
                updated = updated with { ExpiresAt = now + (window < TimeSpan.FromMinutes(1) ? TimeSpan.FromMinutes(1) : window) };
            }

            if (await _store.UpdateApprovalAsync(updated, current.Revision, cancellationToken).ConfigureAwait(false))
            {
                // Recorded before the woken call runs on, so the audit reads granted, then executed.
                _events.Decided(updated, decider.Name, verdict);
                Apply(updated);
                return change with { Updated = updated };
            }

            // Changed under us (another approver, a timeout, the caller leaving): decide against what it is now.
        }

        return new ApprovalChange(null, $"approval {id} keeps changing; try again", 409);
    }

    /// <summary>Reads an approval.</summary>
    public ValueTask<ApprovalRecord?> GetAsync(string id, CancellationToken cancellationToken) => _store.GetApprovalAsync(id, cancellationToken);

    /// <summary>Lists approvals.</summary>
    public ValueTask<IReadOnlyList<ApprovalRecord>> ListAsync(ApprovalQuery query, CancellationToken cancellationToken) => _store.ListApprovalsAsync(query, cancellationToken);

    /// <summary>The remembered grants.</summary>
    public ValueTask<IReadOnlyList<RememberedGrant>> ListGrantsAsync(bool includeInactive, CancellationToken cancellationToken) =>
        _store.ListGrantsAsync(_time.GetUtcNow(), includeInactive, cancellationToken);

    /// <summary>Revokes a remembered grant.</summary>
    public async Task<bool> RevokeGrantAsync(string id, string by, CancellationToken cancellationToken)
    {
        var revoked = await _store.RevokeGrantAsync(id, by, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        if (revoked)
        {
            _events.GrantRevoked(id, by);
            await RefreshGrantsAsync(cancellationToken).ConfigureAwait(false);
        }

        return revoked;
    }

    /// <summary>Voids what waits in a stop's scope (called when a stop is issued).</summary>
    public void Void(StopRecord stop) =>
        // Off the stop's thread: the store's reads and writes complete synchronously, and the stop's acknowledgement
        // must not wait for them (a decision on a voided approval is refused from the stop table meanwhile).
        ThreadPool.UnsafeQueueUserWorkItem(
            static state =>
            {
                foreach (var id in state.Service._waiters.Keys)
                {
                    // Waiters of this process first; then the store is brought in line.
                    _ = state.Service.VoidOneAsync(id, state.Stop);
                }

                _ = state.Service.VoidStoredAsync(state.Stop);
            },
            (Service: this, Stop: stop),
            preferLocal: false);

    private async Task VoidOneAsync(string id, StopRecord stop)
    {
        try
        {
            if (await _store.GetApprovalAsync(id, CancellationToken.None).ConfigureAwait(false) is { State: ApprovalState.Pending } a && stop.Covers(a.Agent, a.Session, a.Server))
            {
                await EndAsync(id, ApprovalState.Voided, "voided: " + stop.Message, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            LogVoidFailed(_logger, id, ex.Message);
        }
    }

    private async Task VoidStoredAsync(StopRecord stop)
    {
        try
        {
            var pending = await _store.ListApprovalsAsync(new ApprovalQuery { State = ApprovalState.Pending, Agent = stop.Scope == StopScope.Agent ? stop.Target : null, Limit = 100_000 }, CancellationToken.None).ConfigureAwait(false);
            foreach (var a in pending.Where(a => stop.Covers(a.Agent, a.Session, a.Server)))
            {
                await EndAsync(a.Id, ApprovalState.Voided, "voided: " + stop.Message, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            LogVoidFailed(_logger, stop.Id, ex.Message);
        }
    }

    /// <summary>Another process changed an approval or a grant: wake a local waiter, refresh grants, tell watchers.</summary>
    public async Task OnStoreChangeAsync(string key, CancellationToken cancellationToken)
    {
        if (key.StartsWith("rem_", StringComparison.Ordinal))
        {
            await RefreshGrantsAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

        if (await _store.GetApprovalAsync(key, cancellationToken).ConfigureAwait(false) is { } record)
        {
            Apply(record);
        }
    }

    private void Apply(ApprovalRecord record)
    {
        if (record.RememberId is not null && _grants.All(g => g.Id != record.RememberId) && ApprovalRules.GrantOf(record) is { } grant)
        {
            _grants = [grant, .. _grants];
        }

        // Watchers hear of the decision before the woken call can report its release, so they see both, in order.
        Changed?.Invoke(record);
        if (_waiters.TryGetValue(record.Id, out var waiter))
        {
            waiter.Saw(record);
            if (record.State != ApprovalState.Pending)
            {
                waiter.Decided.TrySetResult(record);
            }
        }
    }

    // Ends a pending (or unreleased approved) approval for a reason of Warden's; returns what it is now.
    private async Task<ApprovalRecord?> EndAsync(string id, ApprovalState state, string why, CancellationToken cancellationToken)
    {
        var ended = await ApplyAsync(id, current => current.State switch
        {
            ApprovalState.Pending => ApprovalRules.End(current, state, why, _time.GetUtcNow()),
            ApprovalState.Approved when state is not ApprovalState.Expired || _time.GetUtcNow() >= current.ExpiresAt =>
                ApprovalRules.End(current, state, why, _time.GetUtcNow()),
            _ => null,
        }, cancellationToken).ConfigureAwait(false);
        return ended;
    }

    // Compare-and-set loop: transform returns the next record, or null to leave it as it is.
    private async Task<ApprovalRecord?> ApplyAsync(string id, Func<ApprovalRecord, ApprovalRecord?> transform, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 16; attempt++)
        {
            var current = await _store.GetApprovalAsync(id, cancellationToken).ConfigureAwait(false);
            if (current is null)
            {
                return null;
            }

            if (transform(current) is not { } next)
            {
                return current;
            }

            if (await _store.UpdateApprovalAsync(next, current.Revision, cancellationToken).ConfigureAwait(false))
            {
                _events.Ended(next);
                Apply(next);
                return next;
            }
        }

        return await _store.GetApprovalAsync(id, cancellationToken).ConfigureAwait(false);
    }

    private StopRecord? StopCovering(ApprovalRecord a)
    {
        foreach (var stop in _stops.Stops)
        {
            if (stop.Covers(a.Agent, a.Session, a.Server))
            {
                return stop;
            }
        }

        return null;
    }

    // ---- Sweeping -------------------------------------------------------------------------------------------

    private async Task SweepLoopAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.SweepInterval, _time, stopping).ConfigureAwait(false);
                await HeartbeatAsync(stopping).ConfigureAwait(false);
                await SweepAsync(stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogSweepFailed(_logger, ex.Message);
            }
        }
    }

    private ValueTask HeartbeatAsync(CancellationToken cancellationToken) =>
        _store.SetStateAsync("approvals.owner." + Instance, Core.Audit.AuditCanonical.FormatTime(_time.GetUtcNow()), cancellationToken);

    // Times out what nobody decided, and abandons callers whose process is gone (a restart): never run silently.
    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        foreach (var state in new[] { ApprovalState.Pending, ApprovalState.Approved })
        {
            var open = await _store.ListApprovalsAsync(new ApprovalQuery { State = state, Limit = 100_000 }, cancellationToken).ConfigureAwait(false);
            foreach (var a in open)
            {
                if (now >= a.ExpiresAt && !_waiters.ContainsKey(a.Id))
                {
                    await EndAsync(a.Id, ApprovalState.Expired, state == ApprovalState.Pending
                        ? $"no decision within {Minutes(a.ExpiresAt - a.CreatedAt)}"
                        : "approved, but the agent did not retry in time", cancellationToken).ConfigureAwait(false);
                }
                else if (a.Owner.Length > 0 && a.Owner != Instance && !await OwnerAliveAsync(a.Owner, now, cancellationToken).ConfigureAwait(false))
                {
                    await EndAsync(a.Id, ApprovalState.Abandoned, "Warden restarted while the agent waited; the call was not run", cancellationToken).ConfigureAwait(false);
                }
                else if (a.Owner == Instance && !_waiters.ContainsKey(a.Id) && a.Mode == ApprovalMode.Hold && now - a.CreatedAt > TimeSpan.FromSeconds(5))
                {
                    await EndAsync(a.Id, ApprovalState.Abandoned, "the waiting caller is gone; the call was not run", cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }

    private async Task<bool> OwnerAliveAsync(string owner, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (_ownerSeen.TryGetValue(owner, out var seen) && now - seen < TimeSpan.FromSeconds(5))
        {
            return true;
        }

        var beat = await _store.GetStateAsync("approvals.owner." + owner, cancellationToken).ConfigureAwait(false);
        if (beat is null)
        {
            return false;
        }

        var at = Core.Audit.AuditCanonical.ParseTime(beat);
        // A live process beats every sweep (2 s by default); five missed beats mean it is gone.
        var alive = now - at < _options.SweepInterval * 5;
        if (alive)
        {
            _ownerSeen[owner] = now;
        }

        return alive;
    }

    private async Task RefreshGrantsAsync(CancellationToken cancellationToken) =>
        _grants = await _store.ListGrantsAsync(_time.GetUtcNow(), false, cancellationToken).ConfigureAwait(false);

    // A caller of this process waiting on an approval: completed with the record once it is decided or ended.
    private sealed class Waiter(ApprovalRecord record)
    {
        private ApprovalRecord _latest = record;

        // Continuations run on the thread that decides: an approved call goes on to the upstream from the
        // approver's request instead of waiting for a thread-pool thread behind the agents' calls (on a busy
        // machine that wait was the longest part of the approval path). Nothing completes it under a lock.
        public TaskCompletionSource<ApprovalRecord> Decided { get; } = new();

        /// <summary>The newest revision this process has seen.</summary>
        public ApprovalRecord Latest => Volatile.Read(ref _latest);

        public void Saw(ApprovalRecord record)
        {
            var seen = Volatile.Read(ref _latest);
            while (record.Revision > seen.Revision)
            {
                var was = Interlocked.CompareExchange(ref _latest, record, seen);
                if (ReferenceEquals(was, seen))
                {
                    return;
                }

                seen = was;
            }
        }
    }

    // ---- Words ----------------------------------------------------------------------------------------------

    private static string Who(ApprovalRecord a) => a.ApproverGroups.Count == 0 ? "an approver" : string.Join(" or ", a.ApproverGroups);

    internal static string Minutes(TimeSpan span) => span.TotalSeconds < 90 ? $"{Math.Max(0, (int)Math.Ceiling(span.TotalSeconds))} s" : $"{(int)Math.Ceiling(span.TotalMinutes)} min";

    /// <summary>What the agent is told when an approval did not let its call run.</summary>
    internal static string Refusal(ApprovalRecord a) => a.State switch
    {
        ApprovalState.Denied => $"denied by {a.DecidedBy} (approval {a.Id}): {a.DecisionReason}",
        ApprovalState.Expired => $"denied: approval {a.Id} expired ({a.DecisionReason})",
        ApprovalState.Voided => $"denied: approval {a.Id} {a.DecisionReason}",
        ApprovalState.Withdrawn => $"denied: approval {a.Id} was withdrawn ({a.DecisionReason})",
        ApprovalState.Abandoned => $"denied: approval {a.Id} was abandoned ({a.DecisionReason})",
        ApprovalState.Executed => $"denied: approval {a.Id} was used already; a call runs once per approval",
        _ => $"denied: approval {a.Id} is {ApprovalNames.Name(a.State)}",
    };

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_sweeper is not null)
        {
            await _sweeper.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Progress for approval {Id} could not be sent: {Error}")]
    private static partial void LogProgressFailed(ILogger logger, string id, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Asking the client to confirm approval {Id} failed: {Error}")]
    private static partial void LogConfirmFailed(ILogger logger, string id, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "Voiding approvals for {Id} failed: {Error}")]
    private static partial void LogVoidFailed(ILogger logger, string id, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sweeping approvals failed: {Error}")]
    private static partial void LogSweepFailed(ILogger logger, string error);
}
