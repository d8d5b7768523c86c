using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Warden.Core.Identity;
using Warden.Core.Storage;

namespace Warden.Storage.Sqlite;

/// <summary>How values are written to and read from columns.</summary>
internal static class SqliteFormat
{
    private const string TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'";

    /// <summary>ISO 8601 in UTC with 100 ns precision: exact, sortable as text, readable in the sqlite3 shell.</summary>
    public static string FormatTimestamp(DateTimeOffset value) =>
        value.UtcDateTime.ToString(TimestampFormat, CultureInfo.InvariantCulture);

    /// <summary>Reads any ISO 8601 form (rows written by hand or other tools included), as UTC.</summary>
    public static DateTimeOffset ParseTimestamp(string text) =>
        DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    public static string FormatKind(PrincipalKind kind) => kind switch
    {
        PrincipalKind.Agent => "agent",
        PrincipalKind.Operator => "operator",
        PrincipalKind.Approver => "approver",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown principal kind."),
    };

    public static PrincipalKind ParseKind(string text) => text switch
    {
        "agent" => PrincipalKind.Agent,
        "operator" => PrincipalKind.Operator,
        "approver" => PrincipalKind.Approver,
        _ => throw new StoreUnavailableException($"The store holds a principal of unknown kind '{text}'."),
    };

    public static string FormatGroups(IReadOnlyList<string> groups)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var group in groups)
            {
                writer.WriteStringValue(group);
            }

            writer.WriteEndArray();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public static IReadOnlyList<string> ParseGroups(string json)
    {
        using var document = JsonDocument.Parse(json);
        var groups = new List<string>(document.RootElement.GetArrayLength());
        foreach (var element in document.RootElement.EnumerateArray())
        {
            groups.Add(element.GetString() ?? string.Empty);
        }

        return groups;
    }
}
