using System.Text.Json.Nodes;

namespace Warden.Samples.Workplace.Tools;

internal static class ToolResults
{
    public static string Json(JsonNode node) => node.ToJsonString(WorkplaceJson.Compact);

    /// <summary>
    /// The configured <c>--slow-ms</c> latency, spent before a mutation is applied: a stop that arrives during the
    /// wait cancels the call and nothing changes, which is what stop tests need to observe.
    /// </summary>
    public static Task BeforeMutationAsync(WorkplaceOptions options, CancellationToken ct) =>
        options.MutationDelay > TimeSpan.Zero ? Task.Delay(options.MutationDelay, ct) : Task.CompletedTask;
}
