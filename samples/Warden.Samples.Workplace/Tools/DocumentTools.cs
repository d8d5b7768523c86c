using System.ComponentModel;
using System.Text.Json.Serialization;
using ModelContextProtocol.Server;

namespace Warden.Samples.Workplace.Tools;

[JsonConverter(typeof(JsonStringEnumConverter<Visibility>))]
public enum Visibility
{
    [JsonStringEnumMemberName("private")] Private,
    [JsonStringEnumMemberName("team")] Team,
    [JsonStringEnumMemberName("public")] Public,
}

[McpServerToolType]
public static class DocumentTools
{
    [McpServerTool(Name = "list_documents", Title = "List documents", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false)]
    [Description("Lists documents: id, title, owner, visibility and whether they are confidential.")]
    public static async Task<string> ListDocuments(WorkplaceStore store, CancellationToken cancellationToken = default) =>
        ToolResults.Json(await store.ListDocumentsAsync(cancellationToken));

    [McpServerTool(Name = "read_document", Title = "Read document", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false)]
    [Description("Returns a document with its content and its confidential flag.")]
    public static async Task<string> ReadDocument(
        WorkplaceStore store,
        [Description("Document id, e.g. doc-1.")] string id,
        CancellationToken cancellationToken = default)
    {
        var result = await store.ReadDocumentAsync(id, cancellationToken);
        OperationLog.Note("confidential", result["confidential"]?.DeepClone());
        return ToolResults.Json(result);
    }

    [McpServerTool(Name = "share_document", Title = "Share document", ReadOnly = false, Destructive = false, Idempotent = true, OpenWorld = true)]
    [Description("Changes who can see a document: private (owner only), team, or public (anyone, outside the company too).")]
    public static async Task<string> ShareDocument(
        WorkplaceStore store,
        WorkplaceOptions options,
        [Description("Document id.")] string id,
        [Description("New visibility.")] Visibility visibility,
        CancellationToken cancellationToken = default)
    {
        await ToolResults.BeforeMutationAsync(options, cancellationToken);
        string value = visibility switch
        {
            Visibility.Private => "private",
            Visibility.Team => "team",
            Visibility.Public => "public",
            _ => throw new WorkplaceException($"Unknown visibility '{visibility}'."),
        };
        var result = await store.ShareDocumentAsync(id, value, cancellationToken);
        OperationLog.Note("confidential", result["confidential"]?.DeepClone());
        OperationLog.Note("previous", result["previous"]?.DeepClone());
        return ToolResults.Json(result);
    }
}
