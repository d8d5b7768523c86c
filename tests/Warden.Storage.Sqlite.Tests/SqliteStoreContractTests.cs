using Warden.Core.Storage;
using Warden.Storage.Contract;
using Xunit.Abstractions;

namespace Warden.Storage.Sqlite.Tests;

/// <summary>
/// The store contract against <see cref="SqliteWardenStore"/>. Each test gets its own folder; "another
/// instance" is a second <see cref="SqliteWardenStore"/> on the same file: its own connections and its own
/// in-process signal, so it only learns of the first one's changes through <c>PRAGMA data_version</c>, as a
/// second process would. (A real second process is exercised in <see cref="SqliteCrossProcessTests"/>.)
/// </summary>
public sealed class SqliteStoreContractTests(ITestOutputHelper output) : StoreContractTests(output)
{
    protected override Task<string> CreateLocationAsync() =>
        Task.FromResult(Path.Combine(TempFolder.Create(), SqliteStoreOptions.DefaultFileName));

    protected override IWardenStore CreateStore(string location) =>
        new SqliteWardenStore(new SqliteStoreOptions { Path = location });

    protected override IWardenStore CreateUnreachableStore() =>
        new SqliteWardenStore(new SqliteStoreOptions
        {
            Path = Path.Combine(Path.GetTempPath(), "warden-missing-" + Guid.NewGuid().ToString("N"), "sub", "warden.db"),
        });

    protected override Task DeleteLocationAsync(string location)
    {
        TempFolder.Delete(Path.GetDirectoryName(location)!);
        return Task.CompletedTask;
    }
}
