namespace Warden.Storage.Sqlite;

/// <summary>How <see cref="SqliteWardenStore"/> opens and watches its database file.</summary>
public sealed class SqliteStoreOptions
{
    /// <summary>The file name used inside a data folder; see <see cref="ForDataFolder"/>.</summary>
    public const string DefaultFileName = "warden.db";

    /// <summary>
    /// Path of the database file. The file is created when missing; its directory is not, so a missing
    /// or unwritable directory is reported as a <see cref="Core.Storage.StoreUnavailableException"/>.
    /// SQLite also creates <c>-wal</c> and <c>-shm</c> files next to it.
    /// </summary>
    public required string Path { get; init; }

    /// <summary>
    /// How often a watcher checks whether another process changed the file (one cheap
    /// <c>PRAGMA data_version</c> per interval per store, however many watchers). Changes published
    /// through the same store instance wake watchers at once. Default 50 ms.
    /// </summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// How long a statement waits for another connection or process holding the write lock before
    /// failing with <see cref="Core.Storage.StoreUnavailableException"/>. Default 5 s.
    /// </summary>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Use <c>synchronous=FULL</c> (fsync the WAL on every commit) instead of the default <c>NORMAL</c>.
    /// In WAL mode, NORMAL never corrupts the file, but the last commits before a power loss or OS crash
    /// may be lost (a process crash loses nothing).
    /// </summary>
    public bool FullSync { get; init; }

    /// <summary>
    /// How often a thread of the store's own checkpoints the write-ahead log into the database file (see
    /// <see cref="WalCheckpointer"/>), so that no commit waits for a checkpoint's fsyncs. Zero leaves checkpoints to
    /// SQLite's default (inside the commit that takes the log past 1,000 pages). Default 200 ms.
    /// </summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Clock for timestamps the store sets (change times) and for the poll timer.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Options for <see cref="DefaultFileName"/> in <paramref name="dataFolder"/>.</summary>
    public static SqliteStoreOptions ForDataFolder(string dataFolder)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataFolder);
        return new SqliteStoreOptions { Path = System.IO.Path.Combine(dataFolder, DefaultFileName) };
    }
}
