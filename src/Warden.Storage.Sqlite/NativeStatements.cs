using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Warden.Storage.Sqlite;

/// <summary>
/// Statements prepared once and driven through SQLitePCL directly, for the writes a caller waits on (the audit's
/// append, a stop's record), where Microsoft.Data.Sqlite's per-execution parsing and parameter binders cost most.
/// </summary>
internal static class NativeStatements
{
    public static sqlite3_stmt Prepare(sqlite3 db, string sql)
    {
        SqliteException.ThrowExceptionForRC(raw.sqlite3_prepare_v2(db, sql, out var stmt), db);
        return stmt;
    }

    /// <summary>Runs a statement that returns no rows, and resets it for the next binding.</summary>
    public static void Step(sqlite3_stmt stmt, sqlite3 db)
    {
        try
        {
            var rc = raw.sqlite3_step(stmt);
            if (rc != raw.SQLITE_DONE)
            {
                SqliteException.ThrowExceptionForRC(rc, db);
            }
        }
        finally
        {
            raw.sqlite3_reset(stmt);
        }
    }
}
