using System.ComponentModel;
using System.Text.Json;
using ModelContextProtocol.Server;

namespace Warden.Samples.Workplace.Tools;

[McpServerToolType]
public static class RecordTools
{
    [McpServerTool(Name = "query_records", Title = "Query records", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false)]
    [Description("Returns the records of a table (customers, tickets, employees), optionally only those whose fields equal the filter values.")]
    public static async Task<string> QueryRecords(
        WorkplaceStore store,
        [Description("Table name: customers, tickets or employees.")] string table,
        [Description("Field name to required value, compared as strings, e.g. {\"status\":\"open\"}.")] Dictionary<string, string>? filter = null,
        CancellationToken cancellationToken = default) =>
        ToolResults.Json(await store.QueryRecordsAsync(table, filter, cancellationToken));

    [McpServerTool(Name = "update_record", Title = "Update record", ReadOnly = false, Destructive = false, Idempotent = true, OpenWorld = false)]
    [Description("Sets fields of one record; other fields keep their values. The id cannot be changed.")]
    public static async Task<string> UpdateRecord(
        WorkplaceStore store,
        WorkplaceOptions options,
        [Description("Table name.")] string table,
        [Description("Record id, e.g. tick-3.")] string id,
        [Description("Fields to set, e.g. {\"status\":\"closed\"}.")] Dictionary<string, JsonElement> fields,
        CancellationToken cancellationToken = default)
    {
        if (fields.Count == 0)
        {
            throw new WorkplaceException("fields must set at least one field.");
        }

        await ToolResults.BeforeMutationAsync(options, cancellationToken);
        return ToolResults.Json(await store.UpdateRecordAsync(table, id, fields, cancellationToken));
    }
}
