using Warden.Core.Identity;

namespace Warden.Core.Storage;

/// <summary>
/// The one port to durable state. SQLite by default, PostgreSQL for several replicas.
/// Every operation any implementation offers is covered by the store contract test suite.
/// </summary>
/// <remarks>
/// Implementations must be safe for concurrent use, and must make changes published by one
/// process visible to every other process on the same store through <see cref="WatchAsync"/>.
/// </remarks>
public interface IWardenStore : IAsyncDisposable
{
    /// <summary>Creates or migrates the schema. Idempotent; safe when several processes start at once.</summary>
    ValueTask InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>Adds a principal with the hash of its token.</summary>
    /// <returns>False when an active principal of that kind and name exists already.</returns>
    ValueTask<bool> AddPrincipalAsync(Principal principal, ReadOnlyMemory<byte> tokenHash, CancellationToken cancellationToken = default);

    /// <summary>Finds the active principal whose token has this hash; revoked ones are never returned.</summary>
    ValueTask<Principal?> FindPrincipalByTokenHashAsync(ReadOnlyMemory<byte> tokenHash, CancellationToken cancellationToken = default);

    /// <summary>Lists principals, optionally of one kind, optionally including revoked ones.</summary>
    ValueTask<IReadOnlyList<Principal>> ListPrincipalsAsync(PrincipalKind? kind = null, bool includeRevoked = false, CancellationToken cancellationToken = default);

    /// <summary>Revokes the active principal of that kind and name.</summary>
    /// <returns>False when there was none.</returns>
    ValueTask<bool> RevokePrincipalAsync(PrincipalKind kind, string name, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>Reads a named piece of state (for example the policy version in force).</summary>
    ValueTask<string?> GetStateAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Writes a named piece of state.</summary>
    ValueTask SetStateAsync(string key, string value, CancellationToken cancellationToken = default);

    /// <summary>Appends a change to the feed every process on this store watches.</summary>
    /// <returns>The change's id, increasing across the store.</returns>
    ValueTask<long> PublishChangeAsync(string topic, string key, string? payload, CancellationToken cancellationToken = default);

    /// <summary>The id of the newest change, or 0 when there is none.</summary>
    ValueTask<long> GetLatestChangeIdAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Streams changes with an id greater than <paramref name="afterId"/>, in id order, including those
    /// published by other processes, until cancelled. Changes already present are yielded first.
    /// </summary>
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
}
