using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace Warden.Core.Audit;

/// <summary>What is wrong with an audit log, as far as the chain can tell.</summary>
public enum AuditDamage
{
    /// <summary>Nothing: every record is where it was written, unchanged, and the log ends at its head.</summary>
    None = 0,

    /// <summary>A record's contents were changed (its hash no longer matches, or it was recomputed and the next record no longer links to it).</summary>
    Edited,

    /// <summary>Records are missing from the middle (a gap in sequence numbers, or later records renumbered to close it).</summary>
    Deleted,

    /// <summary>Records were added that Warden did not write (a forged record, later records renumbered to make room, a duplicate, or records past the head).</summary>
    Inserted,

    /// <summary>Records are intact but not in the order they were written.</summary>
    Reordered,

    /// <summary>Records are missing at the end: the log stops before its recorded head.</summary>
    Truncated,
}

/// <summary>The result of verifying an audit log.</summary>
public sealed record AuditVerification
{
    /// <summary>True when no damage was found.</summary>
    public bool Ok => Damage == AuditDamage.None;

    /// <summary>What is wrong, if anything.</summary>
    public AuditDamage Damage { get; init; }

    /// <summary>The sequence number (index in the chain) of the first bad record, when there is damage.</summary>
    public long? BadSeq { get; init; }

    /// <summary>The 0-based position, among the records read, of the first bad record (negative when it is past the end).</summary>
    public long? BadPosition { get; init; }

    /// <summary>What is wrong, in words.</summary>
    public string Message { get; init; } = "";

    /// <summary>Records that verified before the first damage (all of them when there is none).</summary>
    public long Verified { get; init; }

    /// <summary>Sequence number of the last good record.</summary>
    public long LastSeq { get; init; }

    /// <summary>Hash of the last good record.</summary>
    public ReadOnlyMemory<byte> LastHash { get; init; }
}

/// <summary>
/// Recomputes an audit chain and names the first bad record. Pure: it reads a sequence of events (from a store or
/// an exported file) and compares the end with a head kept apart from the records.
/// </summary>
/// <remarks>
/// Each record must hash (over <see cref="AuditCanonical"/>) to its stored hash, link to the previous record's
/// hash, and carry the next sequence number. At the first record that does not, the verifier looks at up to
/// <see cref="Window"/> records ahead to say what happened: it finds the sequence number each record was written
/// with (the one its hash matches), which tells an edit from a renumbering (deletion or insertion closed up),
/// a move (reordering), or a gap. Without signed checkpoints, someone who rewrites the records after the damage
/// and the head (recomputing every later hash) cannot be caught; see docs/audit.md.
/// </remarks>
public static class AuditVerifier
{
    /// <summary>How many records ahead the verifier looks to classify damage.</summary>
    public const int Window = 64;

    private const int ChunkSize = 4096;

    /// <summary>Verifies events in the order given.</summary>
    /// <param name="events">The records, in the order of the log (by sequence number from a store, by line from a file).</param>
    /// <param name="head">The head kept apart from the records; null when unknown (truncation cannot be detected then).</param>
    /// <param name="start">The record before the first one given (for a partial log); the genesis by default.</param>
    public static AuditVerification Verify(IEnumerable<AuditEvent> events, AuditHead? head = null, AuditHead? start = null)
    {
        ArgumentNullException.ThrowIfNull(events);
        var anchor = start ?? AuditHead.Empty;
        var lastSeq = anchor.Seq;
        var lastHash = anchor.Hash;
        long position = 0;

        // Reading (one thread) overlaps hashing (the others): each record's own hash depends only on its stored
        // fields and prev, so chunks hash in parallel; links and sequence numbers are then checked in order.
        using var chunks = new BlockingCollection<AuditEvent[]>(boundedCapacity: 4);
        using var stop = new CancellationTokenSource();
        Exception? readError = null;
        var producer = Task.Run(() =>
        {
            try
            {
                var chunk = new List<AuditEvent>(ChunkSize);
                foreach (var e in events)
                {
                    chunk.Add(e);
                    if (chunk.Count == ChunkSize)
                    {
                        chunks.Add([.. chunk], stop.Token);
                        chunk.Clear();
                    }
                }

                if (chunk.Count > 0)
                {
                    chunks.Add([.. chunk], stop.Token);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
            catch (Exception ex)
            {
                readError = ex;
            }
            finally
            {
                chunks.CompleteAdding();
            }
        });

        try
        {
            using var consumer = chunks.GetConsumingEnumerable().GetEnumerator();
            var hashOk = new bool[ChunkSize];
            while (consumer.MoveNext())
            {
                var chunk = consumer.Current;
                Parallel.For(0, (chunk.Length + 255) / 256, part =>
                {
                    var end = Math.Min(chunk.Length, (part + 1) * 256);
                    for (var i = part * 256; i < end; i++)
                    {
                        hashOk[i] = AuditCanonical.HashMatches(chunk[i], chunk[i].Seq);
                    }
                });

                for (var i = 0; i < chunk.Length; i++)
                {
                    var r = chunk[i];
                    if (hashOk[i] && r.Seq == lastSeq + 1 && r.PrevHash.Span.SequenceEqual(lastHash.Span))
                    {
                        lastSeq = r.Seq;
                        lastHash = r.Hash;
                        position++;
                        continue;
                    }

                    var window = new List<AuditEvent>(Window);
                    window.AddRange(chunk.Skip(i).Take(Window));
                    while (window.Count < Window && consumer.MoveNext())
                    {
                        window.AddRange(consumer.Current.Take(Window - window.Count));
                    }

                    return Classify(window, position, lastSeq, lastHash, anchor, head);
                }
            }
        }
        finally
        {
            stop.Cancel();
            producer.Wait();
        }

        if (readError is not null)
        {
            ExceptionDispatchInfo.Throw(readError);
        }

        if (head is { } h)
        {
            if (lastSeq < h.Seq)
            {
                return Bad(AuditDamage.Truncated, lastSeq + 1, -1, position, lastSeq, lastHash,
                    $"the log ends at record {lastSeq} but its head says {h.Seq}: records {lastSeq + 1}..{h.Seq} were removed from the end");
            }

            if (lastSeq > h.Seq)
            {
                return Bad(AuditDamage.Inserted, h.Seq + 1, position - (lastSeq - h.Seq), position, lastSeq, lastHash,
                    $"records {h.Seq + 1}..{lastSeq} come after the head ({h.Seq}): they were added behind Warden's back");
            }

            if (!lastHash.Span.SequenceEqual(h.Hash.Span))
            {
                return Bad(AuditDamage.Edited, lastSeq, position - 1, position, lastSeq, lastHash,
                    $"record {lastSeq} does not have the hash the head records: the end of the log was rewritten");
            }
        }

        return new AuditVerification { Damage = AuditDamage.None, Verified = position, LastSeq = lastSeq, LastHash = lastHash, Message = $"{position} records verified" };
    }

    private static AuditVerification Classify(List<AuditEvent> window, long position, long lastSeq, ReadOnlyMemory<byte> lastHash, AuditHead anchor, AuditHead? head)
    {
        var expected = lastSeq + 1;
        var r0 = window[0];
        if (r0.Seq == expected)
        {
            if (head is { } h && expected > h.Seq)
            {
                return Bad(AuditDamage.Inserted, expected, position, position, lastSeq, lastHash,
                    $"record {expected} comes after the head ({h.Seq}): records were added behind Warden's back");
            }

            var written = WrittenSeq(r0);
            if (written is null)
            {
                if (window.Count > 1 && WrittenSeq(window[1]) == expected)
                {
                    return Bad(AuditDamage.Inserted, expected, position, position, lastSeq, lastHash,
                        $"record {expected} was inserted: Warden did not write it, and the record now at {window[1].Seq} was written as {expected}");
                }

                return Bad(AuditDamage.Edited, expected, position, position, lastSeq, lastHash,
                    $"record {expected} was edited: its contents do not match its hash");
            }

            if (written == expected)
            {
                if (lastSeq == anchor.Seq)
                {
                    return Bad(AuditDamage.Edited, expected, position, position, lastSeq, lastHash,
                        $"record {expected} does not link to {(anchor.Seq == 0 ? "the start of the chain" : $"record {anchor.Seq}")}: its prev_hash was changed");
                }

                return Bad(AuditDamage.Edited, lastSeq, position - 1, position - 1, lastSeq - 1, default,
                    $"record {lastSeq} was edited and its hash recomputed: record {expected} is chained to a different hash");
            }

            if (written > expected)
            {
                foreach (var later in window.Skip(1))
                {
                    if (WrittenSeq(later) == expected)
                    {
                        return Bad(AuditDamage.Reordered, expected, position, position, lastSeq, lastHash,
                            $"records were reordered: record {expected} holds the record written as {written}, and the record written as {expected} is now at {later.Seq}");
                    }
                }

                return Bad(AuditDamage.Deleted, expected, position, position, lastSeq, lastHash,
                    $"record(s) {expected}..{written - 1} were deleted and the later records renumbered: the record now at {expected} was written as {written}");
            }

            var shift = expected - written.Value;
            return Bad(AuditDamage.Inserted, written.Value, position - shift, position - shift, lastSeq - shift, default,
                $"record(s) {written}..{expected - 1} were inserted and the later records renumbered: the record now at {expected} was written as {written}");
        }

        if (r0.Seq > expected)
        {
            foreach (var later in window.Skip(1))
            {
                if (later.Seq == expected)
                {
                    return Bad(AuditDamage.Reordered, expected, position, position, lastSeq, lastHash,
                        $"records are out of order: record {r0.Seq} comes before record {expected}");
                }
            }

            return Bad(AuditDamage.Deleted, expected, position, position, lastSeq, lastHash,
                r0.Seq - 1 == expected ? $"record {expected} was deleted (the log goes from {lastSeq} to {r0.Seq})" : $"records {expected}..{r0.Seq - 1} were deleted (the log goes from {lastSeq} to {r0.Seq})");
        }

        if (r0.Seq == lastSeq && r0.Hash.Span.SequenceEqual(lastHash.Span))
        {
            return Bad(AuditDamage.Inserted, r0.Seq, position, position, lastSeq, lastHash, $"record {r0.Seq} appears twice");
        }

        return r0.Seq == lastSeq
            ? Bad(AuditDamage.Inserted, r0.Seq, position, position, lastSeq, lastHash, $"a second record {r0.Seq} was inserted after record {lastSeq}")
            : Bad(AuditDamage.Reordered, r0.Seq, position, position, lastSeq, lastHash, $"records are out of order: record {r0.Seq} comes after record {lastSeq}");
    }

    /// <summary>The sequence number a record's hash was computed with, searched near its current one; null when none matches (its contents changed).</summary>
    private static long? WrittenSeq(AuditEvent r)
    {
        if (AuditCanonical.HashMatches(r, r.Seq))
        {
            return r.Seq;
        }

        for (var d = 1; d <= Window; d++)
        {
            if (AuditCanonical.HashMatches(r, r.Seq + d))
            {
                return r.Seq + d;
            }

            if (r.Seq - d >= 1 && AuditCanonical.HashMatches(r, r.Seq - d))
            {
                return r.Seq - d;
            }
        }

        return null;
    }

    private static AuditVerification Bad(AuditDamage damage, long seq, long badPosition, long verified, long lastSeq, ReadOnlyMemory<byte> lastHash, string message) => new()
    {
        Damage = damage,
        BadSeq = seq,
        BadPosition = badPosition,
        Verified = Math.Max(0, verified),
        LastSeq = Math.Max(0, lastSeq),
        LastHash = lastHash,
        Message = message,
    };
}
