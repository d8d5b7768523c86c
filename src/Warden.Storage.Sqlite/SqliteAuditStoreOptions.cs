namespace Warden.Storage.Sqlite;

/// <summary>How <see cref="SqliteAuditStore"/> opens its file.</summary>
public sealed class SqliteAuditStoreOptions
{
    /// <summary>The file name used inside a data folder.</summary>
    public const string DefaultFileName = "audit.db";

    /// <summary>Path of the audit database. Created when missing (not in read-only mode); its directory is not.</summary>
    public required string Path { get; init; }

    /// <summary>
    /// <c>synchronous=FULL</c> on the writer's connection: every commit (one per batch) is fsynced before the
    /// events count as durable, so they survive a power loss (<c>audit.durability: fsync</c>). Otherwise
    /// <c>NORMAL</c> in WAL mode: durable once in the WAL, surviving a crash of Warden (<c>process</c>).
    /// </summary>
    public bool FullSync { get; init; }

    /// <summary>How long the writer waits for a lock another connection holds before the batch fails. Default 5 s.</summary>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often a thread of the store's own checkpoints the write-ahead log into the database file (see
    /// <see cref="WalCheckpointer"/>), so that no commit waits for a checkpoint's fsyncs. Zero leaves checkpoints to
    /// SQLite's default (inside the commit that takes the log past 1,000 pages). Default 200 ms.
    /// </summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Open read-only (verify, export): never creates, migrates or writes the file.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Options for <see cref="DefaultFileName"/> in a data folder.</summary>
    public static SqliteAuditStoreOptions ForDataFolder(string dataFolder, bool readOnly = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataFolder);
        return new SqliteAuditStoreOptions { Path = System.IO.Path.Combine(dataFolder, DefaultFileName), ReadOnly = readOnly };
    }
}
