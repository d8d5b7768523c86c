using Microsoft.Data.Sqlite;

namespace Warden.Storage.Sqlite.Tests;

/// <summary>Throw-away folders for database files.</summary>
internal static class TempFolder
{
    private static readonly string Root = Path.Combine(Path.GetTempPath(), "warden-store-tests");

    public static string Create()
    {
        var path = Path.Combine(Root, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    public static void Delete(string folder)
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // A straggling handle; the OS temp cleaner will get it.
        }
    }
}
