using Warden.Core.Storage;
using Warden.Gateway.Configuration;
using Warden.Storage.Sqlite;

namespace Warden.Gateway;

/// <summary>Creates the store a config names.</summary>
public static class StoreFactory
{
    /// <summary>The data folder of a config, created when missing.</summary>
    public static string DataFolder(WardenConfig config)
    {
        var dir = config.Resolve(config.DataDir);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Creates (but does not initialize) the store.</summary>
    public static IWardenStore Create(WardenConfig config, TimeProvider time)
    {
        if (config.Store != "sqlite")
        {
            throw new NotSupportedException("the PostgreSQL store is not available in this build; use store: sqlite");
        }

        return new SqliteWardenStore(new SqliteStoreOptions
        {
            Path = Path.Combine(DataFolder(config), SqliteStoreOptions.DefaultFileName),
            FullSync = config.Audit.Durability == "fsync",
            Time = time,
        });
    }
}
