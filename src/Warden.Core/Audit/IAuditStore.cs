namespace Warden.Core.Audit;

/// <summary>
/// The port to the audit log: an append-only chain of <see cref="AuditEvent"/>s and its head.
/// </summary>
/// <remarks>
/// Faults of the backing store surface as <see cref="Storage.StoreUnavailableException"/>. Appends are serialized
/// by the store (one writer at a time, across processes): it reads the head, numbers and chains the events, writes
/// them and the new head in one transaction, and returns only when they are durable at the store's level.
/// </remarks>
public interface IAuditStore : IAsyncDisposable
{
    /// <summary>Creates or migrates the schema. Idempotent.</summary>
    ValueTask InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>Appends events (their <see cref="AuditEvent.Seq"/> and hashes are ignored) in one transaction.</summary>
    /// <returns>The events as written: numbered, chained and hashed, in the order given.</returns>
    ValueTask<IReadOnlyList<AuditEvent>> AppendAsync(IReadOnlyList<AuditEvent> events, CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends as <see cref="AppendAsync"/> does, synchronously on the caller's thread, but only when that involves
    /// no wait: returns null (nothing written) when the store would have to wait for a lock or may stall (for example
    /// an fsync per commit). <see cref="AuditWriter.Commit"/> uses it to spare a sequential caller two thread
    /// switches; the default never appends this way.
    /// </summary>
    IReadOnlyList<AuditEvent>? TryAppendNow(IReadOnlyList<AuditEvent> events) => null;

    /// <summary>The head as recorded apart from the records (what the log must end with).</summary>
    ValueTask<AuditHead> GetHeadAsync(CancellationToken cancellationToken = default);

    /// <summary>Reads records in sequence order from <paramref name="fromSeq"/> through <paramref name="toSeq"/> (inclusive; null: to the end).</summary>
    IAsyncEnumerable<AuditEvent> ReadAsync(long fromSeq = 1, long? toSeq = null, CancellationToken cancellationToken = default);

    /// <summary>Finds records matching a query.</summary>
    ValueTask<IReadOnlyList<AuditEvent>> QueryAsync(AuditQuery query, CancellationToken cancellationToken = default);
}

/// <summary>A search of the audit log. Every set field must match; strings match exactly except <see cref="Text"/>.</summary>
public sealed record AuditQuery
{
    /// <summary>The agent.</summary>
    public string? Agent { get; init; }

    /// <summary>The session.</summary>
    public string? Session { get; init; }

    /// <summary>The upstream server.</summary>
    public string? Server { get; init; }

    /// <summary>The tool.</summary>
    public string? Tool { get; init; }

    /// <summary>The effect (allow, deny, ask, shadow, error).</summary>
    public string? Effect { get; init; }

    /// <summary>The rule.</summary>
    public string? Rule { get; init; }

    /// <summary>The event kind; a trailing <c>*</c> matches a prefix (<c>call.*</c>).</summary>
    public string? Kind { get; init; }

    /// <summary>The call id.</summary>
    public string? Call { get; init; }

    /// <summary>At or after this time.</summary>
    public DateTimeOffset? From { get; init; }

    /// <summary>Before this time.</summary>
    public DateTimeOffset? To { get; init; }

    /// <summary>A substring of the tool, rule, arguments, detail or actor (case-insensitive for ASCII).</summary>
    public string? Text { get; init; }

    /// <summary>Only records after this sequence number.</summary>
    public long? AfterSeq { get; init; }

    /// <summary>At most this many records.</summary>
    public int Limit { get; init; } = 100;

    /// <summary>True for the newest matching records (still returned oldest first), false for the oldest.</summary>
    public bool Newest { get; init; }
}
