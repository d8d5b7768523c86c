using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Warden.Conformance.Fixture;

internal static class FixtureCompletions
{
    private static readonly string[] Words = ["paris", "park", "party", "test", "testing", "tester", "value1", "value2"];

    public static ValueTask<CompleteResult> CompleteAsync(RequestContext<CompleteRequestParams> context, CancellationToken ct)
    {
        string prefix = context.Params?.Argument.Value ?? "";
        var values = Words.Where(w => w.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)).ToList();
        return ValueTask.FromResult(new CompleteResult
        {
            Completion = new Completion { Values = values, Total = values.Count, HasMore = false },
        });
    }
}
