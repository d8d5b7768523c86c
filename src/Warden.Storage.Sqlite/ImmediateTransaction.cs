using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Warden.Storage.Sqlite;

/// <summary>
/// Write transactions begun natively, for writes that must not wait: Microsoft.Data.Sqlite's own transactions retry
/// on a busy lock (sleeping), and a caller that would rather hand its write to another thread than wait needs to
/// know at once.
/// </summary>
internal static class ImmediateTransaction
{
    /// <summary>
    /// <c>BEGIN IMMEDIATE</c> without a busy wait: false when another connection holds the write lock. The
    /// connection's busy timeout is <paramref name="busyTimeout"/> again afterwards.
    /// </summary>
    public static bool TryBegin(sqlite3 db, TimeSpan busyTimeout)
    {
        raw.sqlite3_busy_timeout(db, 0);
        int rc;
        try
        {
            rc = raw.sqlite3_exec(db, "BEGIN IMMEDIATE;");
        }
        finally
        {
            raw.sqlite3_busy_timeout(db, (int)busyTimeout.TotalMilliseconds);
        }

        if ((rc & 0xFF) is raw.SQLITE_BUSY or raw.SQLITE_LOCKED)
        {
            return false;
        }

        SqliteException.ThrowExceptionForRC(rc, db);
        return true;
    }

    /// <summary>Runs <paramref name="body"/> inside a transaction begun by <see cref="TryBegin"/> and commits; rolls back if it throws.</summary>
    public static T Complete<TState, T>(sqlite3 db, TState state, Func<TState, T> body)
    {
        try
        {
            var result = body(state);
            SqliteException.ThrowExceptionForRC(raw.sqlite3_exec(db, "COMMIT;"), db);
            return result;
        }
        catch
        {
            raw.sqlite3_exec(db, "ROLLBACK;");
            throw;
        }
    }
}
