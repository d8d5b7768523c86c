using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Warden.Storage.Sqlite;

/// <summary>
/// Checkpoints one database file's write-ahead log on a thread of its own.
/// </summary>
/// <remarks>
/// SQLite's default is that the connection whose commit takes the log past 1,000 pages copies the log into the
/// database and fsyncs both files, inside that commit. Whoever happens to make that commit waits milliseconds for
/// the disk: a stop's acknowledgement, an approver's decision, the intent of an audited call, which are exactly the
/// writes whose tail latency users see. So writers' connections get <see cref="WriterPragmas"/>, which keeps the
/// automatic checkpoint only as a backstop far out, and this thread runs a passive checkpoint every interval.
/// A passive checkpoint takes no lock that writers or readers wait for; when a reader pins old pages it copies what
/// it can and the next round copies the rest. Once a checkpoint has copied the whole log, SQLite starts the log from
/// its beginning at the next commit and <c>journal_size_limit</c> trims the file.
/// </remarks>
internal sealed class WalCheckpointer : IDisposable
{
    /// <summary>The backstop in pages (64 MiB at the default 4 KiB page): reached only if this thread falls behind.</summary>
    internal const int BackstopPages = 16_384;

    /// <summary>Per-connection settings for every connection that commits to a file with a checkpointer.</summary>
    internal static readonly string WriterPragmas = string.Create(
        CultureInfo.InvariantCulture,
        $"PRAGMA wal_autocheckpoint = {BackstopPages}; PRAGMA journal_size_limit = {64L * 1024 * 1024};");

    private readonly string _connectionString;
    private readonly TimeSpan _interval;
    private readonly ManualResetEventSlim _stopping = new(false, spinCount: 0); // sleeps between rounds: no spinning
    private readonly Thread _thread;
    private long _rounds;
    private long _logFrames;
    private long _copiedFrames;
    private int _disposed;

    /// <summary>Starts checkpointing the database at <paramref name="path"/> every <paramref name="interval"/>.</summary>
    public WalCheckpointer(string path, TimeSpan interval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,

            // Never create the file: a database deleted under a running Warden must stay missing, so that its
            // writers notice and fail, not find a fresh empty file.
            Mode = SqliteOpenMode.ReadWrite,
            Pooling = false,
        }.ToString();
        _interval = interval;
        _thread = new Thread(Run) { IsBackground = true, Name = "warden-sqlite-checkpoint" };
        _thread.Start();
    }

    /// <summary>Checkpoint rounds run so far (for tests and the benchmarks).</summary>
    public long Rounds => Interlocked.Read(ref _rounds);

    /// <summary>The last round's view of the log: frames in it, and how many of them are in the database now.</summary>
    public (long Log, long Copied) Last => (Interlocked.Read(ref _logFrames), Interlocked.Read(ref _copiedFrames));

    /// <summary>Stops the thread after a last checkpoint, so a clean shutdown leaves a short log.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping.Set();
        _thread.Join();
        _stopping.Dispose();
    }

    private void Run()
    {
        SqliteConnection? connection = null;
        try
        {
            var last = false;
            while (!last)
            {
                last = _stopping.Wait(_interval);
                try
                {
                    if (connection is null)
                    {
                        connection = new SqliteConnection(_connectionString);
                        connection.Open();
                    }

                    Checkpoint(connection);
                }
                catch (SqliteException)
                {
                    // The file is gone, locked for a moment or the disk is failing: the writers see that for themselves
                    // (and refuse to act); here the next round reopens and tries again.
                    connection?.Dispose();
                    connection = null;
                }
            }
        }
        finally
        {
            connection?.Dispose();
        }
    }

    private void Checkpoint(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(PASSIVE);";
        using var reader = command.ExecuteReader();
        if (reader.Read())
        {
            Interlocked.Exchange(ref _logFrames, reader.GetInt64(1));
            Interlocked.Exchange(ref _copiedFrames, reader.GetInt64(2));
        }

        Interlocked.Increment(ref _rounds);
    }
}
