using System.ComponentModel;
using System.Text.Json.Nodes;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Warden.Conformance.Fixture;

[McpServerResourceType]
public sealed class FixtureResources
{
    public const string WatchedUri = "test://watched-resource";

    [McpServerResource(UriTemplate = "test://static-text", Name = "static-text", MimeType = "text/plain")]
    [Description("A static text resource.")]
    public static TextResourceContents StaticText() => new()
    {
        Uri = "test://static-text", MimeType = "text/plain", Text = "This is the content of the static text resource.",
    };

    [McpServerResource(UriTemplate = "test://static-binary", Name = "static-binary", MimeType = "image/png")]
    [Description("A static binary resource (a 1x1 PNG).")]
    public static BlobResourceContents StaticBinary() => BlobResourceContents.FromBytes(Media.Png, "test://static-binary", "image/png");

    [McpServerResource(UriTemplate = WatchedUri, Name = "watched-resource", MimeType = "text/plain")]
    [Description("A resource clients can subscribe to.")]
    public static TextResourceContents Watched() => new()
    {
        Uri = WatchedUri, MimeType = "text/plain", Text = "Watched resource content.",
    };

    [McpServerResource(UriTemplate = "test://template/{id}/data", Name = "template-data", MimeType = "application/json")]
    [Description("Data for the given id.")]
    public static TextResourceContents TemplateData([Description("Item id")] string id) => new()
    {
        Uri = $"test://template/{id}/data",
        MimeType = "application/json",
        Text = new JsonObject { ["id"] = id, ["templateTest"] = true, ["data"] = $"Data for ID: {id}" }.ToJsonString(),
    };
}
