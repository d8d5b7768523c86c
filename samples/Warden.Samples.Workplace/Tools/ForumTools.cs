using System.ComponentModel;
using ModelContextProtocol.Server;

namespace Warden.Samples.Workplace.Tools;

[McpServerToolType]
public static class ForumTools
{
    // The forum is a public community space, hence open-world even for reading.
    [McpServerTool(Name = "list_posts", Title = "List forum posts", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = true)]
    [Description("Lists posts on the public forum, oldest first.")]
    public static async Task<string> ListPosts(
        WorkplaceStore store,
        [Description("Only posts in this topic.")] string? topic = null,
        CancellationToken cancellationToken = default) =>
        ToolResults.Json(await store.ListPostsAsync(topic, cancellationToken));

    [McpServerTool(Name = "post_message", Title = "Post to forum", ReadOnly = false, Destructive = false, Idempotent = false, OpenWorld = true)]
    [Description("Publishes a message on the public forum under the given topic. Everyone can read it.")]
    public static async Task<string> PostMessage(
        WorkplaceStore store,
        WorkplaceOptions options,
        [Description("Forum topic, e.g. build-failures.")] string topic,
        [Description("Message text.")] string text,
        CancellationToken cancellationToken = default)
    {
        await ToolResults.BeforeMutationAsync(options, cancellationToken);
        var result = await store.PostMessageAsync(topic, text, cancellationToken);
        OperationLog.Note("id", result["id"]?.DeepClone());
        return ToolResults.Json(result);
    }
}
