namespace Warden.Core.DataGuard;

/// <summary>
/// What one read of labelled data gave an agent: labels and the fingerprints of what it read, until a time. The
/// store keeps these so that a restart or another gateway process on the same store enforces them too.
/// </summary>
/// <param name="Id">Unique; writing the same id again changes nothing (a retried write is harmless).</param>
/// <param name="Agent">The agent that read.</param>
/// <param name="Session">The session, when the policy keeps labels per session; null for the agent across all its sessions.</param>
/// <param name="Labels">The labels given.</param>
/// <param name="Fingerprints">Fingerprints of the text read (64-bit hashes; never the text).</param>
/// <param name="At">When it was read.</param>
/// <param name="Until">When labels and fingerprints lapse.</param>
public sealed record DataLabelRecord(
    string Id,
    string Agent,
    string? Session,
    IReadOnlyList<string> Labels,
    IReadOnlyList<ulong> Fingerprints,
    DateTimeOffset At,
    DateTimeOffset Until)
{
    /// <summary>Position in the store, increasing with each record added (0 until stored).</summary>
    public long Sequence { get; init; }

    /// <summary>A new record id.</summary>
    public static string NewId() => "lbl_" + Guid.NewGuid().ToString("N");
}
