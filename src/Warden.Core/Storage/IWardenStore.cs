using Warden.Core.Identity;
using Warden.Core.Stops;

namespace Warden.Core.Storage;

/// <summary>
/// The one port to durable state. SQLite by default, PostgreSQL for several replicas.
/// Every operation any implementation offers is covered by the store contract test suite.
/// </summary>
/// <remarks>
/// Implementations must be safe for concurrent use, and must make changes published by one
/// process visible to every other process on the same store through <see cref="WatchAsync"/>.
/// <para>
/// Faults of the backing store (unreachable, unwritable, locked past its timeout, schema too new) surface as
/// <see cref="StoreUnavailableException"/> with the driver's exception inside, never as a silent success.
/// Other operations before <see cref="InitializeAsync"/> throw <see cref="InvalidOperationException"/>;
/// after disposal, <see cref="ObjectDisposedException"/>.
/// </para>
/// <para>
/// Writing principals or state does not publish to the change feed: the caller publishes (for example
/// <see cref="ChangeTopics.Principal"/> after adding or revoking) with <see cref="PublishChangeAsync"/>.
/// Timestamps are kept to at least the millisecond and may come back in UTC (the same instant).
/// </para>
/// The contract test suite (tests/Warden.Storage.Contract) pins all of this down; see docs/storage.md.
/// </remarks>
public interface IWardenStore : IAsyncDisposable
{
    /// <summary>Creates or migrates the schema. Idempotent; safe when several processes start at once.</summary>
    ValueTask InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>Adds a principal with the hash of its token.</summary>
    /// <returns>False when an active principal of that kind and name exists already.</returns>
    /// <exception cref="ArgumentException">The principal is already revoked, or the hash is empty.</exception>
    /// <exception cref="InvalidOperationException">Another principal, active or revoked, has this token hash.</exception>
    ValueTask<bool> AddPrincipalAsync(Principal principal, ReadOnlyMemory<byte> tokenHash, CancellationToken cancellationToken = default);

    /// <summary>Finds the active principal whose token has this hash; revoked ones are never returned.</summary>
    ValueTask<Principal?> FindPrincipalByTokenHashAsync(ReadOnlyMemory<byte> tokenHash, CancellationToken cancellationToken = default);

    /// <summary>Lists principals, optionally of one kind, optionally including revoked ones.</summary>
    /// <returns>Ordered by kind (enum order), then name (ordinal), then oldest first.</returns>
    ValueTask<IReadOnlyList<Principal>> ListPrincipalsAsync(PrincipalKind? kind = null, bool includeRevoked = false, CancellationToken cancellationToken = default);

    /// <summary>Revokes the active principal of that kind and name.</summary>
    /// <returns>False when there was none.</returns>
    ValueTask<bool> RevokePrincipalAsync(PrincipalKind kind, string name, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>Reads a named piece of state (for example the policy version in force).</summary>
    ValueTask<string?> GetStateAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Writes a named piece of state.</summary>
    ValueTask SetStateAsync(string key, string value, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records a stop and publishes it on the change feed (topic <see cref="ChangeTopics.Stop"/>, key = the stop's
    /// id, payload = JSON <c>{event: stopped|paused|resumed, scope, target, by, reason}</c>) in the same
    /// transaction, so every process sees it. Idempotent by id.
    /// </summary>
    ValueTask AddStopAsync(StopRecord stop, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records a stop as <see cref="AddStopAsync"/> does, synchronously on the caller's thread, but only when that
    /// involves no wait: false (nothing written) when another writer holds the lock or each commit is fsynced.
    /// A stop's acknowledgement tries this first, so it does not queue behind the calls it stops for a thread.
    /// Faults as <see cref="AddStopAsync"/>. The default never writes this way.
    /// </summary>
    bool TryAddStopNow(StopRecord stop) => false;

    /// <summary>Lifts a stop (a resume), recording who and why, and publishes the change.</summary>
    /// <returns>False when no stop with that id is in force.</returns>
    ValueTask<bool> LiftStopAsync(string id, string by, string reason, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>The stops in force, oldest first.</summary>
    ValueTask<IReadOnlyList<StopRecord>> ListStopsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Records a new approval and publishes it (topic <see cref="ChangeTopics.Approval"/>, key = its id, payload =
    /// JSON <c>{state, agent, revision}</c>) in the same transaction.
    /// </summary>
    /// <exception cref="InvalidOperationException">An approval with that id exists already.</exception>
    ValueTask AddApprovalAsync(Approvals.ApprovalRecord approval, CancellationToken cancellationToken = default);

    /// <summary>Reads an approval; null when there is none with that id.</summary>
    ValueTask<Approvals.ApprovalRecord?> GetApprovalAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>Lists approvals, newest first.</summary>
    ValueTask<IReadOnlyList<Approvals.ApprovalRecord>> ListApprovalsAsync(ApprovalQuery query, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces an approval only if its stored revision is still <paramref name="expectedRevision"/> (compare-and-set),
    /// and publishes the change in the same transaction. When the update approves with a remembered grant, the grant
    /// is stored in that transaction too.
    /// </summary>
    /// <returns>False when the approval changed since it was read (or does not exist): nothing was written.</returns>
    ValueTask<bool> UpdateApprovalAsync(Approvals.ApprovalRecord updated, int expectedRevision, CancellationToken cancellationToken = default);

    /// <summary>Lists remembered grants, newest first: the active ones at <paramref name="now"/>, or all.</summary>
    ValueTask<IReadOnlyList<Approvals.RememberedGrant>> ListGrantsAsync(DateTimeOffset now, bool includeInactive = false, CancellationToken cancellationToken = default);

    /// <summary>Revokes a grant and publishes the change (topic <see cref="ChangeTopics.Approval"/>, key = the grant's id).</summary>
    /// <returns>False when no active grant has that id.</returns>
    ValueTask<bool> RevokeGrantAsync(string id, string by, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records what a read of labelled data gave an agent (labels, fingerprints, expiry) and publishes it (topic
    /// <see cref="ChangeTopics.Label"/>, key = the agent, payload = JSON <c>{id, sequence}</c>) in the same
    /// transaction, so every process on the store enforces it. Idempotent by id: the same id again writes and
    /// publishes nothing.
    /// </summary>
    /// <returns>The record's sequence: larger than that of every record added before it (the existing one for a known id).</returns>
    ValueTask<long> AddDataLabelAsync(DataGuard.DataLabelRecord record, CancellationToken cancellationToken = default);

    /// <summary>
    /// The data-label records still in force at <paramref name="now"/> (<c>Until &gt; now</c>) with a sequence greater
    /// than <paramref name="afterSequence"/>, in sequence order, at most <paramref name="limit"/> (page on with the last
    /// sequence seen). Each comes back with every field and its <see cref="DataGuard.DataLabelRecord.Sequence"/>.
    /// </summary>
    ValueTask<IReadOnlyList<DataGuard.DataLabelRecord>> ListDataLabelsAsync(DateTimeOffset now, long afterSequence = 0, int limit = 1000, CancellationToken cancellationToken = default);

    /// <summary>Deletes the data-label records that lapsed by <paramref name="now"/> (<c>Until &lt;= now</c>).</summary>
    /// <returns>How many were deleted.</returns>
    ValueTask<int> PruneDataLabelsAsync(DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Appends a change to the feed every process on this store watches.</summary>
    /// <returns>The change's id, increasing across the store (a later publish gets a larger id; ids may have gaps).</returns>
    ValueTask<long> PublishChangeAsync(string topic, string key, string? payload, CancellationToken cancellationToken = default);

    /// <summary>The id of the newest change, or 0 when there is none.</summary>
    ValueTask<long> GetLatestChangeIdAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Streams changes with an id greater than <paramref name="afterId"/>, in id order, including those
    /// published by other processes, until cancelled. Changes already present are yielded first.
    /// </summary>
    /// <remarks>
    /// Cancellation ends the enumeration normally (no <see cref="OperationCanceledException"/>); a store fault
    /// ends it with <see cref="StoreUnavailableException"/>, after which the caller may watch again from the last
    /// id it saw. Changes from other processes arrive within about 100 ms.
    /// </remarks>
    IAsyncEnumerable<StoreChange> WatchAsync(long afterId, CancellationToken cancellationToken = default);
}

/// <summary>One entry of the change feed.</summary>
/// <param name="Id">Increasing across the store.</param>
/// <param name="Topic">What changed; see <see cref="ChangeTopics"/>.</param>
/// <param name="Key">Which one (an agent name, an approval id, ...).</param>
/// <param name="Payload">Optional JSON describing the change.</param>
/// <param name="At">When it was published.</param>
public sealed record StoreChange(long Id, string Topic, string Key, string? Payload, DateTimeOffset At);

/// <summary>Topics of the change feed.</summary>
public static class ChangeTopics
{
    /// <summary>A principal was added or revoked.</summary>
    public const string Principal = "principal";

    /// <summary>A policy version was loaded (or rejected).</summary>
    public const string Policy = "policy";

    /// <summary>A stop was issued or lifted.</summary>
    public const string Stop = "stop";

    /// <summary>An approval changed state.</summary>
    public const string Approval = "approval";

    /// <summary>An agent read labelled data: a data-label record was added (key = the agent).</summary>
    public const string Label = "label";
}

/// <summary>Which approvals to list; unset fields do not filter.</summary>
public sealed record ApprovalQuery
{
    /// <summary>Only approvals in this state.</summary>
    public Approvals.ApprovalState? State { get; init; }

    /// <summary>Only this agent's.</summary>
    public string? Agent { get; init; }

    /// <summary>Only calls of this tool (as the upstream knows it).</summary>
    public string? Tool { get; init; }

    /// <summary>Only approvals of this exact call (digest including the policy version).</summary>
    public string? Digest { get; init; }

    /// <summary>At most this many, newest first.</summary>
    public int Limit { get; init; } = 100;
}
